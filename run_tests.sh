#!/usr/bin/env bash
# Create or update .venv from requirements.txt, then run the whole test suite (unit and integration).
# The tests start what they need themselves: a Kafka broker (through start_kafka.sh), embedded
# PostgreSQL servers and Spark sessions, and stop them when they finish. Extra arguments go to pytest
# (e.g. -n 0 or TEST_WORKERS=0 for one process, -k NAME for some tests).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source scripts/venv.sh
ensure_venv
.venv/bin/python -m pinpipe.spark.class_archive  # the tests' Spark drivers use it too (pinpipe/spark/class_archive.py)
say "Checking the code: ruff (lint) and lint-imports (the stages' import contracts)"
.venv/bin/ruff check --quiet . || { say "error: ruff found problems (above); fix them or run .venv/bin/ruff check --fix ." >&2; exit 1; }
.venv/bin/lint-imports --no-cache > .venv/lint-imports.log 2>&1 \
    || { sed -n '/Contracts/,$p' .venv/lint-imports.log >&2; say "error: an import contract is broken (above)" >&2; exit 1; }
# TEST_WORKERS=N runs the suite on N pytest-xdist workers. The default is one process on up to 4 cores: the
# JVMs (brokers, Spark) keep two cores busy, and on this project's 2-core machine two workers took longer
# (1554 s against 1430 s for pytest; README "Tests"). 2 workers from 6 cores up.
workers="${TEST_WORKERS:-$( (( $(nproc 2>/dev/null || echo 2) >= 6 )) && echo 2 || echo 0)}"
say "Running the tests (unit and integration)$( (( workers > 0 )) && printf ' on %s workers' "$workers")"
exec .venv/bin/python -m pytest -n "$workers" --dist loadgroup "$@"
