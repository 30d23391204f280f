#!/usr/bin/env bash
# One command: install everything, then run the whole test suite (unit, service, integration
# with a real nats-server, end-to-end calls through all five services on the local models).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest "$@"
