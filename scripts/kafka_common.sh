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
KAFKA_BROKERS="${KAFKA_BROKERS:-1}"
# In cluster mode node N listens on KAFKA_PORT + 10*(N-1) and its controller on KAFKA_CONTROLLER_PORT + 10*(N-1).
KAFKA_NODE_PORT_STEP=10
KAFKA_CACHE_DIR="${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pinpipe/kafka-$KAFKA_VERSION}"
KAFKA_PARTITIONS="${KAFKA_PARTITIONS:-3}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-60}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
# A local broker compiles with C1 only: it is ready sooner, and takes a kafka-python producer's records as fast
# as with C2 (bench/HISTORY.md). Empty for HotSpot's default.
KAFKA_JIT_OPTS="${KAFKA_JIT_OPTS--XX:TieredStopAtLevel=1}"
PIN_TOPIC="${PIN_TOPIC:-pin_data.pin}"
GEO_TOPIC="${GEO_TOPIC:-pin_data.geo}"
USER_TOPIC="${USER_TOPIC:-pin_data.user}"

JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"
# Class-data archives (JDK AppCDS) of what the broker and each Kafka tool load: a JVM given one maps those
# classes instead of reading and verifying them from the jars (a broker is ready sooner, a topic tool runs in about
# half the time). The first broker or tool without one writes it when it exits cleanly, under a
# partial name, renamed into place once a JVM maps it. "off": neither made nor used.
KAFKA_CDS="${KAFKA_CDS:-on}"

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The numeric settings, checked once here: a port of "abc" was bash's "abc: unbound variable" deep in a script,
# and 0 partitions a Kafka tool's stack trace.
check_number() {  # NAME VALUE MIN MAX: a whole number from MIN to MAX
    [[ "$2" =~ ^[0-9]+$ ]] && (( 10#$2 >= $3 && 10#$2 <= $4 )) || die "$1 must be a whole number from $3 to $4, not '$2'"
}
check_number KAFKA_PORT "$KAFKA_PORT" 1 65535
check_number KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT" 1 65535
check_number KAFKA_PARTITIONS "$KAFKA_PARTITIONS" 1 10000
check_number KAFKA_START_TIMEOUT "$KAFKA_START_TIMEOUT" 1 86400
check_number KAFKA_STOP_TIMEOUT "$KAFKA_STOP_TIMEOUT" 1 86400

# Sets the NODE_* variables of node $1 (1-based) of a cluster of $2 brokers. A single broker keeps the
# layout it always had (.kafka/data, .kafka/logs, .kafka/kafka.pid); node N of a cluster lives in
# .kafka/node-N/ with its own data, logs, configuration and pid file.
set_node() {
    local node="$1" brokers="$2" shift=$(( ($1 - 1) * KAFKA_NODE_PORT_STEP ))
    NODE_ID="$node"
    NODE_PORT=$((KAFKA_PORT + shift))
    NODE_CONTROLLER_PORT=$((KAFKA_CONTROLLER_PORT + shift))
    if (( brokers == 1 )); then
        NODE_DIR="$KAFKA_STATE_DIR"
        NODE_DATA_DIR="$KAFKA_DATA_DIR"
        NODE_LOG_DIR="$KAFKA_LOG_DIR"
    else
        NODE_DIR="$KAFKA_STATE_DIR/node-$node"
        NODE_DATA_DIR="$NODE_DIR/data"
        NODE_LOG_DIR="$NODE_DIR/logs"
    fi
    NODE_PID_FILE="$NODE_DIR/kafka.pid"
    NODE_CONFIG_FILE="$NODE_DIR/server.properties"
}

# Every node directory this state directory has held (the single broker's is the state directory itself).
known_node_dirs() {
    local dir
    [[ -f "$KAFKA_STATE_DIR/server.properties" || -f "$KAFKA_STATE_DIR/kafka.pid" ]] && printf '%s\n' "$KAFKA_STATE_DIR"
    for dir in "$KAFKA_STATE_DIR"/node-*; do
        [[ -d "$dir" ]] && printf '%s\n' "$dir"
    done
    return 0
}

# The pid in $1/kafka.pid if that process is our broker (started with $1/server.properties), else nothing.
# A pid file whose process is gone, or was reused by another program, is stale.
running_pid() {
    local dir="$1" pid
    [[ -f "$dir/kafka.pid" ]] || return 1
    pid="$(tr -dc '0-9' < "$dir/kafka.pid")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/server.properties" || return 1
    printf '%s' "$pid"
}

kafka_running() {  # true when a broker or cluster node started from $KAFKA_STATE_DIR is running
    local dir
    while read -r dir; do
        running_pid "$dir" >/dev/null && return 0
    done < <(known_node_dirs)
    return 1
}

# A cluster started from $KAFKA_STATE_DIR as "NODES RUNNING STOPPED_IDS...": its size (the controller quorum's
# voters, from a running node's configuration), how many of its nodes run, and the ids of those that do not.
# Nothing when no cluster node runs (a single broker, or nothing).
cluster_state() {
    local dir voters="" id running=0 stopped=()
    for dir in "$KAFKA_STATE_DIR"/node-*; do
        if running_pid "$dir" >/dev/null; then
            voters="$(sed -n 's/^controller\.quorum\.voters=//p' "$dir/server.properties")"
            break
        fi
    done
    [[ -n "$voters" ]] || return 0
    for id in $(tr ',' '\n' <<< "$voters" | cut -d@ -f1); do
        if running_pid "$KAFKA_STATE_DIR/node-$id" >/dev/null; then
            running=$((running + 1))
        else
            stopped+=("$id")
        fi
    done
    printf '%s %s %s\n' "$(( running + ${#stopped[@]} ))" "$running" "${stopped[*]}"
}

without_quorum() {  # NODES RUNNING: true when a cluster of NODES with RUNNING up has no controller quorum (majority)
    (( $2 <= $1 / 2 ))
}

node_list() {  # "1 3" -> "node 1, node 3"
    printf 'node %s' "${1// /, node }"
}

bootstrap_list() {  # host:port of every broker of a cluster of $1
    local node list=()
    for (( node = 1; node <= $1; node++ )); do
        list+=("$KAFKA_HOST:$((KAFKA_PORT + (node - 1) * KAFKA_NODE_PORT_STEP))")
    done
    local IFS=,
    printf '%s' "${list[*]}"
}

port_open() {  # true when something accepts TCP connections on localhost:$1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cds_archive() {  # $1: the JVM's main class; its archive for this Java and these jars (needs KAFKA_CLASSPATH)
    local java libs="${KAFKA_CLASSPATH%/\*}" key
    java="$(readlink -f "$(command -v "$JAVA_BIN")")"
    key="$( { printf '%s %s\n' "$java" "$1"; stat -c '%n %s %Y' "$java" "$(dirname "$(dirname "$java")")"/lib/server/libjvm.* \
        "$libs"/*.jar 2>/dev/null || true; } | sha256sum | cut -c1-16)"
    printf '%s/cds/%s-%s.jsa' "$KAFKA_CACHE_DIR" "${1##*.}" "$key"
}

cds_flags() {  # $1: the archive (cds_archive), $2: where a new one is written (partial); prints the JVM's archive flags
    [[ "$KAFKA_CDS" == off ]] && return 0
    local archive="$1"
    if [[ -s "$archive" ]]; then
        printf '%s' "-XX:SharedArchiveFile=$archive"
    elif mkdir -p "$(dirname "$archive")" 2>/dev/null; then
        printf '%s' "-XX:ArchiveClassesAtExit=$2 -Xlog:cds=off -Xlog:cds+dynamic=off"
    fi
}

cds_keep() {  # $1: the archive, $2: a partial one a JVM wrote as it exited; kept as $1 if a JVM maps it, else removed
    local archive="$1"  # (a file cut short, e.g. by a kill during the dump, would crash every JVM given it)
    if [[ -s "$2" ]] && "$JAVA_BIN" -XX:SharedArchiveFile="$2" -Xshare:on -XX:ErrorFile=/dev/null -XX:-CreateCoredumpOnCrash \
            -cp "$KAFKA_CLASSPATH" -version >/dev/null 2>&1; then
        mv -f "$2" "$archive"
    else
        rm -f "$2"
    fi
}

cds_keep_broker() {  # $1: a node directory whose broker has exited: keep the archive it wrote, if it was to write one
    local note="$1/cds.note" partial archive class_path
    [[ -f "$note" ]] || return 0
    { read -r partial && read -r archive && read -r class_path; } < "$note" || { rm -f "$note"; return 0; }
    KAFKA_CLASSPATH="$class_path" cds_keep "$archive" "$partial"
    rm -f "$note"
}
