#!/usr/bin/env bash
# Creates .venv, installs the test dependencies (PyPI, npm and Debian's chromium) and runs every check:
# ruff (lint and format), mypy, then the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements-dev.txt
# checkov pins packaging<24, which pytest cannot share: it gets a virtual environment of its own.
[ -x .venv-checkov/bin/python ] || "${PYTHON:-python3}" -m venv .venv-checkov
.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check \
    -r deployment/requirements-checkov.txt
npm ci --no-audit --no-fund --loglevel=error
# The browser tests drive Debian's Chromium (Playwright's own browser downloads are not used).
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
    else
        echo "The browser tests need Debian's chromium: sudo apt-get install chromium" >&2
        exit 1
    fi
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
