#!/usr/bin/env bash
# Creates .venv, installs the runtime dependencies and starts MemoryBot on port 3978.
# With nothing configured it runs on SQLite (./data/memory.db) and the offline model.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements.txt
exec .venv/bin/python app.py
