#!/usr/bin/env bash
# Time ./start_kafka.sh to a ready broker: cold (empty Kafka cache and Maven repository, so every jar is
# fetched) and warm (cached jars, formatted storage), on private ports and directories.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work="$(mktemp -d)"
trap 'KAFKA_STATE_DIR="$work/state" KAFKA_PORT=29092 KAFKA_CONTROLLER_PORT=29093 ./stop_kafka.sh >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export KAFKA_STATE_DIR="$work/state" KAFKA_PORT=29092 KAFKA_CONTROLLER_PORT=29093

run() {  # prints seconds taken by one start
    local started now
    started=$(date +%s.%N)
    "$@" ./start_kafka.sh > "$work/start.log" 2>&1 || { cat "$work/start.log"; exit 1; }
    now=$(date +%s.%N)
    ./stop_kafka.sh > /dev/null
    echo "$now - $started" | bc
}

cold=$(run env KAFKA_CACHE_DIR="$work/cache" KAFKA_MAVEN_REPO="$work/m2")
rm -rf "$KAFKA_STATE_DIR"
warm_first=$(run env KAFKA_CACHE_DIR="$work/cache")
warm=$(run env KAFKA_CACHE_DIR="$work/cache")
echo "machine: $(nproc) cores, $(java -version 2>&1 | head -n 1)"
printf '%-52s %6.1f s\n' "cold: fetch jars from Maven Central, format, start" "$cold"
printf '%-52s %6.1f s\n' "warm: cached jars, format, start" "$warm_first"
printf '%-52s %6.1f s   goal <= 15 s\n' "warm: cached jars, formatted storage, start" "$warm"
