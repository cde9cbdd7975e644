# Shared by start_kafka.sh and stop_kafka.sh: settings, paths and the helpers both need.
# shellcheck shell=bash

# The one place the Kafka version is pinned.
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
SCALA_VERSION="2.13"
LOG4J_VERSION="2.25.3"
SLF4J_VERSION="2.0.17"

PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

KAFKA_HOST="${KAFKA_HOST:-localhost}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_STATE_DIR="${KAFKA_STATE_DIR:-$PROJECT_ROOT/.kafka}"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$KAFKA_STATE_DIR/data}"
KAFKA_LOG_DIR="${KAFKA_LOG_DIR:-$KAFKA_STATE_DIR/logs}"
KAFKA_PID_FILE="$KAFKA_STATE_DIR/kafka.pid"
KAFKA_CONFIG_FILE="$KAFKA_STATE_DIR/server.properties"
KAFKA_CACHE_DIR="${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pinpipe/kafka-$KAFKA_VERSION}"
KAFKA_PARTITIONS="${KAFKA_PARTITIONS:-3}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-60}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
PIN_TOPIC="${PIN_TOPIC:-pin_data.pin}"
GEO_TOPIC="${GEO_TOPIC:-pin_data.geo}"
USER_TOPIC="${USER_TOPIC:-pin_data.user}"

JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The pid in the pid file if that process is our broker (same config file), else nothing.
# A pid file whose process is gone, or was reused by another program, is stale.
running_pid() {
    [[ -f "$KAFKA_PID_FILE" ]] || return 1
    local pid
    pid="$(tr -dc '0-9' < "$KAFKA_PID_FILE")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$KAFKA_CONFIG_FILE" || return 1
    printf '%s' "$pid"
}

port_open() {  # true when something accepts TCP connections on localhost:$1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
