#!/usr/bin/env bash
# One command: install everything, lint and type-check (scripts/lint.sh: ruff, mypy), then run the
# whole test suite (unit, service, integration with a real nats-server, end-to-end calls through
# all five services on the local models). Arguments go to pytest, e.g. -m "unit or service".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/lint.sh
exec .venv/bin/python -m pytest "$@"
