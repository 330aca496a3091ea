#!/usr/bin/env bash
# Creates .venv, installs the test dependencies (PyPI and npm) and runs every check:
# ruff (lint and format), mypy, then the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements-dev.txt
npm ci --no-audit --no-fund --loglevel=error
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
