#!/usr/bin/env bash
# One command: install, start nats-server and the five services, place a simulated phone call
# on the offline models, print the transcript with per-stage latencies, and stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/ringline demo "$@"
