#!/usr/bin/env bash
# Create or update .venv from requirements.txt, then run the whole test suite (unit and integration).
# The tests start what they need themselves: a Kafka broker (through start_kafka.sh), embedded
# PostgreSQL servers and Spark sessions, and stop them when they finish. Extra arguments go to pytest
# (e.g. -n 0 or TEST_WORKERS=0 for one process, -k NAME for some tests).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source scripts/venv.sh
ensure_venv
say "Checking the code: ruff (lint) and lint-imports (the stages' import contracts)"
.venv/bin/ruff check --quiet . || { say "error: ruff found problems (above); fix them or run .venv/bin/ruff check --fix ." >&2; exit 1; }
.venv/bin/lint-imports --no-cache > .venv/lint-imports.log 2>&1 \
    || { sed -n '/Contracts/,$p' .venv/lint-imports.log >&2; say "error: an import contract is broken (above)" >&2; exit 1; }
# Two workers: most integration tests wait on brokers, processes and timeouts, so two halve the wall time
# even on two cores. TEST_WORKERS=0 runs everything in this process (pytest -n 0).
workers="${TEST_WORKERS:-2}"
say "Running the tests (unit and integration) on $workers workers"
exec .venv/bin/python -m pytest -n "$workers" --dist loadgroup "$@"
