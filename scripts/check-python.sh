#!/usr/bin/env bash
# Stop `make setup` early, in one line, when the interpreter cannot build the project's venv.
set -euo pipefail
python="${1:-python3}"
if ! command -v "$python" >/dev/null; then
  echo "error: '$python' not found. Install Python 3.11 or newer, then run: make PYTHON=python3.11" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: $("$python" --version 2>&1) is too old: the workbook needs Python 3.11+ (its pinned" \
    "numpy, pandas and scikit-learn do). Run: make PYTHON=python3.11 (Debian/Ubuntu: apt-get" \
    "install python3.11 python3.11-venv)" >&2
  exit 1
fi
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  echo "error: $python cannot create a virtual environment (no venv/ensurepip). Debian/Ubuntu:" \
    "apt-get install python3-venv (or python3.11-venv), then run make again" >&2
  exit 1
fi
