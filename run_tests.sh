#!/usr/bin/env bash
# Create or update .venv, check the code, then run every test: what it does and its settings are in the usage below
# (./run_tests.sh --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
    cat <<'USAGE'
Usage: ./run_tests.sh [PYTEST ARGUMENTS...]

Create or update .venv from requirements.txt, check the code (ruff, lint-imports), then run every test, unit and
integration. The tests start what they need (a Kafka broker and a three-node cluster, embedded PostgreSQL, Spark
sessions and servers) and stop it. Arguments go to pytest: -k NAME for some tests, -x to stop at the first failure
(.venv/bin/pytest --help lists the rest).

Environment: TEST_WORKERS=N (pytest-xdist workers; default 0 below 6 cores, else 2), TEST_KAFKA_PORT (19092: the
test broker's; every other port the tests use is derived from it), SPARK_CLASS_ARCHIVE=off (no class archive),
PYTHON (the Python that makes .venv, 3.10+). README.md, "Tests", says more.
USAGE
    exit 0
fi
source scripts/venv.sh
# The set-up (.venv: minutes on a fresh clone) runs as a process group of its own, stopped with this script: SIGTERM
# to its pid alone (`kill PID`, a supervisor) used to end the script and leave the installer writing into .venv, and
# Ctrl-C, which reaches only the terminal's foreground group, would no longer reach the installer otherwise.
$OWN_GROUP bash -c 'set -euo pipefail; source scripts/venv.sh; ensure_venv' &
setup=$!
stop_setup() {  # STATUS: 130 (SIGINT) or 143 (SIGTERM)
    stop_group "$setup"
    say "error: interrupted ($( (( $1 == 130 )) && echo SIGINT || echo SIGTERM )) while setting up .venv;" \
        "the install was stopped (the next run redoes it)" >&2
    exit "$1"
}
trap 'stop_setup 130' INT
trap 'stop_setup 143' TERM
setup_status=0
wait "$setup" || setup_status=$?
(( setup_status == 0 )) || exit "$setup_status"  # ensure_venv said why
trap 'exit 130' INT  # from here on the EXIT trap stops the class archive's build
trap 'exit 143' TERM
# Spark's class archive (pinpipe/spark/class_archive.py), which the tests' later Spark drivers map, is built (about
# a minute, once per Java and Spark install) at a low priority beside the first tests: drivers started before it
# is ready start without it, and the tests that check it wait for the build (a lock). SPARK_CLASS_ARCHIVE=off: none.
archive_build=""
if [[ "${SPARK_CLASS_ARCHIVE:-}" != off ]]; then
    $OWN_GROUP nice -n 19 .venv/bin/python -m pinpipe.spark.class_archive > .venv/class-archive.log 2>&1 &
    archive_build=$!  # its own process group (setsid): the build's driver JVM goes with it if the tests are cut short
fi
trap '[[ -z "$archive_build" ]] || kill -- "-$archive_build" 2>/dev/null || true' EXIT
say "Checking the code: ruff (lint) and lint-imports (the stages' import contracts)"
.venv/bin/ruff check --quiet . || { say "error: ruff found problems (above); fix them or run .venv/bin/ruff check --fix ." >&2; exit 1; }
.venv/bin/lint-imports --no-cache > .venv/lint-imports.log 2>&1 \
    || { sed -n '/Contracts/,$p' .venv/lint-imports.log >&2; say "error: an import contract is broken (above)" >&2; exit 1; }
# TEST_WORKERS=N runs the suite on N pytest-xdist workers. The default is one process on up to 4 cores: the
# JVMs (brokers, Spark) keep two cores busy, and on this project's 2-core machine two workers took longer
# (README, "Tests"). 2 workers from 6 cores up.
workers="${TEST_WORKERS:-$( (( $(nproc 2>/dev/null || echo 2) >= 6 )) && echo 2 || echo 0)}"
say "Running the tests (unit and integration)$( (( workers > 0 )) && printf ' on %s workers' "$workers")"
# pytest runs in the background, so that SIGTERM to this script's pid alone (`kill PID`, a supervisor) reaches it, as
# SIGINT: pytest stops, and its fixtures stop the brokers, databases and Spark servers they started. (SIGTERM used to
# end this script alone, the tests running on.) A script's background command starts with SIGINT ignored, which
# Python keeps, so the tests' Python restores its handler first. Ctrl-C reaches pytest from the terminal itself;
# this script then waits for its teardown.
.venv/bin/python -c 'import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); import pytest
sys.exit(pytest.main())' -n "$workers" --dist loadgroup "$@" &
tests=$!
trap 'kill -INT "$tests" 2>/dev/null || true' TERM
trap ':' INT
while kill -0 "$tests" 2>/dev/null; do wait "$tests" 2>/dev/null || true; done  # a trapped signal ends a wait early
status=0
wait "$tests" || status=$?  # bash keeps the status of a child it has reaped
if [[ -n "$archive_build" ]]; then
    wait "$archive_build" 2>/dev/null || true
    cat .venv/class-archive.log
fi
exit "$status"
