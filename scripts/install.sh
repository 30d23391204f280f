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
.venv/bin/python scripts/smart_turn_model.py models \
  || echo "warning: no end-of-turn model (optional, RINGLINE_STT_TURN_MODEL); the stt ends turns by its text rules" >&2
echo "taking Whisper base (MIT; CTranslate2, two PyPI parts, sha256-checked) into models/whisper-base ..."
.venv/bin/python scripts/whisper_base_model.py models/whisper-base \
  || echo "warning: no Whisper base (optional, RINGLINE_STT_WHISPER_MODEL=base); the stt transcribes with tiny.en" >&2
# The browser tests (tests/web) drive Debian's chromium with npm's playwright-core; no browser is
# downloaded from anywhere else. Installed when this runs as root on Debian (CI); skipped otherwise.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-liberation)
  command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} for the browser tests ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
if command -v npm >/dev/null 2>&1; then
  (cd tests/web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
