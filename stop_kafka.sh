#!/usr/bin/env bash
# Stop the broker started by start_kafka.sh: SIGTERM for a controlled shutdown, SIGKILL only after
# KAFKA_STOP_TIMEOUT seconds. Idempotent; finds the broker by its pid file, never by process name.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/kafka_common.sh"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

if ! pid="$(running_pid)"; then
    if [[ -f "$KAFKA_PID_FILE" ]]; then
        say "Removing stale pid file $KAFKA_PID_FILE"
        rm -f "$KAFKA_PID_FILE"
    fi
    say "Kafka is not running"
    exit 0
fi

say "Stopping Kafka (pid $pid)"
kill -TERM "$pid"
deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS >= deadline )); then
        say "warning: Kafka did not stop within ${KAFKA_STOP_TIMEOUT}s; killing it (unflushed data may be recovered from the log on next start)" >&2
        kill -KILL "$pid" 2>/dev/null || true
        break
    fi
    sleep 0.2
done
rm -f "$KAFKA_PID_FILE"
say "Kafka stopped"
