#!/usr/bin/env bash
# Creates .venv, installs the test dependencies (PyPI and npm) and runs every check:
# ruff (lint and format), mypy, then the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements-dev.txt
# checkov pins packaging<24, which pytest cannot share: it gets a virtual environment of its own.
[ -x .venv-checkov/bin/python ] || "${PYTHON:-python3}" -m venv .venv-checkov
.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check \
    -r deployment/requirements-checkov.txt
npm ci --no-audit --no-fund --loglevel=error
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
