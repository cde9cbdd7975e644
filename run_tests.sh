#!/usr/bin/env bash
# Create or update .venv from requirements.txt, then run the whole test suite (unit and integration).
# The tests start what they need themselves: a Kafka broker (through start_kafka.sh), embedded
# PostgreSQL servers and Spark sessions, and stop them when they finish. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source scripts/venv.sh
ensure_venv
say "Running the tests (unit and integration)"
exec .venv/bin/python -m pytest "$@"
