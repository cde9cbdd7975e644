#!/usr/bin/env bash
# Start a single-node Apache Kafka 4 broker in KRaft combined mode (broker + controller, no ZooKeeper)
# on localhost:$KAFKA_PORT, and create the pipeline's three topics. Idempotent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/kafka_common.sh"

check_java() {
    command -v "$JAVA_BIN" >/dev/null 2>&1 || die "Java not found: install Java 17 or newer (or set JAVA_HOME)"
    local version major
    version="$("$JAVA_BIN" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
    major="${version%%.*}"
    [[ "$major" == "1" ]] && major="$(cut -d. -f2 <<<"$version")"
    [[ "$major" =~ ^[0-9]+$ && "$major" -ge 17 ]] \
        || die "Kafka $KAFKA_VERSION needs Java 17 or newer; $JAVA_BIN is version ${version:-unknown} (set JAVA_HOME)"
}

# Sets KAFKA_CLASSPATH and KAFKA_LOG4J from, in order: $KAFKA_HOME, the cache, Maven Central, the tarball.
locate_kafka() {
    if [[ -n "${KAFKA_HOME:-}" ]]; then
        [[ -d "$KAFKA_HOME/libs" ]] || die "KAFKA_HOME=$KAFKA_HOME has no libs/ directory"
        say "Using the Kafka installation in KAFKA_HOME=$KAFKA_HOME"
        KAFKA_CLASSPATH="$KAFKA_HOME/libs/*"
        return
    fi
    if [[ ! -f "$KAFKA_CACHE_DIR/libs/.complete" ]]; then
        # One fetch at a time (several brokers or test workers may start at once on a fresh machine); whoever
        # waited finds the jars complete.
        mkdir -p "$KAFKA_CACHE_DIR"
        local lock_fd
        exec {lock_fd}>"$KAFKA_CACHE_DIR/.fetch.lock"
        if command -v flock >/dev/null 2>&1; then flock "$lock_fd"; fi
        [[ -f "$KAFKA_CACHE_DIR/libs/.complete" ]] || fetch_kafka
        exec {lock_fd}>&-
    fi
    KAFKA_CLASSPATH="$KAFKA_CACHE_DIR/libs/*"
}

fetch_kafka() {
    local libs="$KAFKA_CACHE_DIR/libs" work
    work="$(mktemp -d "${TMPDIR:-/tmp}/kafka-fetch.XXXXXX")"
    rm -rf "$libs"
    mkdir -p "$libs"
    say "Fetching Apache Kafka $KAFKA_VERSION into $KAFKA_CACHE_DIR (once; later starts reuse it)"
    if command -v mvn >/dev/null 2>&1 && fetch_with_maven "$work" "$libs"; then
        :
    elif fetch_with_ivy "$work" "$libs"; then
        :
    elif fetch_tarball "$work" "$libs"; then
        :
    else
        rm -rf "$work"
        die "could not fetch Kafka $KAFKA_VERSION (tried mvn, pyspark's Ivy and archive.apache.org); see $work.log, or set KAFKA_HOME to an existing installation"
    fi
    rm -rf "$work"
    touch "$libs/.complete"
}

fetch_with_maven() {
    local work="$1" libs="$2"
    cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.pinpipe</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_$SCALA_VERSION</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <!-- Some transitive dependency asks for SLF4J 1.7, which cannot see the log4j binding. -->
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
    say "  with mvn from Maven Central"
    mvn -B -q -f "$work/pom.xml" ${KAFKA_MAVEN_REPO:+-Dmaven.repo.local="$KAFKA_MAVEN_REPO"} \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" > "$work/mvn.log" 2>&1 \
        || { cp "$work/mvn.log" "$work.log"; say "  mvn failed (log: $work.log)"; return 1; }
}

fetch_with_ivy() {
    local work="$1" libs="$2" ivy python
    python="$PROJECT_ROOT/.venv/bin/python"
    [[ -x "$python" ]] || python="$(command -v python3 || true)"
    [[ -n "$python" ]] || return 1
    ivy="$("$python" -c 'import glob, os, pyspark; print((glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars", "ivy-*.jar")) or [""])[0])' 2>/dev/null || true)"
    [[ -n "$ivy" ]] || return 1
    say "  with the Ivy jar that pyspark ships ($ivy)"
    cat > "$work/ivy.xml" <<IVY
<ivy-module version="2.0">
  <info organisation="local.pinpipe" module="kafka-runtime"/>
  <dependencies>
    <dependency org="org.apache.kafka" name="kafka_$SCALA_VERSION" rev="$KAFKA_VERSION" conf="default"/>
    <dependency org="org.apache.kafka" name="kafka-tools" rev="$KAFKA_VERSION" conf="default"/>
    <dependency org="org.apache.logging.log4j" name="log4j-core" rev="$LOG4J_VERSION" conf="default"/>
    <dependency org="org.apache.logging.log4j" name="log4j-slf4j2-impl" rev="$LOG4J_VERSION" conf="default"/>
    <dependency org="org.slf4j" name="slf4j-api" rev="$SLF4J_VERSION" conf="default"/>
  </dependencies>
</ivy-module>
IVY
    "$JAVA_BIN" -jar "$ivy" -ivy "$work/ivy.xml" -confs default \
        -retrieve "$libs/[artifact]-[revision](-[classifier]).[ext]" -types jar bundle > "$work/ivy.log" 2>&1 \
        || { cp "$work/ivy.log" "$work.log"; say "  Ivy failed (log: $work.log)"; return 1; }
}

fetch_tarball() {
    local work="$1" libs="$2" url
    url="https://archive.apache.org/dist/kafka/$KAFKA_VERSION/kafka_$SCALA_VERSION-$KAFKA_VERSION.tgz"
    command -v curl >/dev/null 2>&1 || return 1
    say "  from $url"
    curl -fsSL --max-time 300 "$url" -o "$work/kafka.tgz" 2> "$work.log" || return 1
    tar -xzf "$work/kafka.tgz" -C "$work" && cp "$work/kafka_$SCALA_VERSION-$KAFKA_VERSION"/libs/*.jar "$libs/"
}

write_config() {  # the configuration of node $NODE_ID of a cluster of $1 brokers
    local brokers="$1" node voters=() replicas min_isr
    for (( node = 1; node <= brokers; node++ )); do
        voters+=("$node@$KAFKA_HOST:$((KAFKA_CONTROLLER_PORT + (node - 1) * KAFKA_NODE_PORT_STEP))")
    done
    replicas=$(( brokers < 3 ? brokers : 3 ))
    min_isr=$(( replicas >= 3 ? 2 : 1 ))
    cat > "$NODE_CONFIG_FILE" <<CONF
# Written by start_kafka.sh: node $NODE_ID of $brokers, KRaft, broker and controller in one process.
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=$(IFS=,; printf '%s' "${voters[*]}")
listeners=PLAINTEXT://$KAFKA_HOST:$NODE_PORT,CONTROLLER://$KAFKA_HOST:$NODE_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$NODE_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$NODE_DATA_DIR
num.partitions=$KAFKA_PARTITIONS
# Every topic, internal ones included, has min(brokers, 3) replicas; with three, a write acknowledged with
# acks=all is on at least two brokers (min.insync.replicas=2), and no out-of-sync replica may become leader.
default.replication.factor=$replicas
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$replicas
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$min_isr
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
# Topics are created by this script with the shared partition count; a typo must not create one.
auto.create.topics.enable=false
CONF
    cat > "$NODE_DIR/log4j2.properties" <<'LOG'
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
LOG
    # Command-line tools log only problems, to stderr, so their output stays parseable.
    cat > "$KAFKA_STATE_DIR/log4j2-tools.properties" <<'LOG'
status = error
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = err
LOG
}

run_java() {  # a short-lived Kafka tool ($1: its main class) in a JVM tuned for start-up time
    local archive partial flags status=0
    archive="$(cds_archive "$1")"
    partial="$archive.$BASHPID.partial"
    flags="$(cds_flags "$archive" "$partial")"
    # shellcheck disable=SC2086  # flags is a list of JVM flags
    "$JAVA_BIN" -Xshare:auto -XX:TieredStopAtLevel=1 -Xmx256m $flags \
        -Dlog4j2.configurationFile="$KAFKA_STATE_DIR/log4j2-tools.properties" \
        -cp "$KAFKA_CLASSPATH" "$@" || status=$?
    if [[ "$flags" == *ArchiveClassesAtExit* ]]; then
        if (( status == 0 )); then cds_keep "$archive" "$partial"; else rm -f "$partial"; fi
    fi
    return "$status"
}

cluster_id() {  # one id for every node of the cluster, made once and kept
    local file="$KAFKA_STATE_DIR/cluster.id"
    if [[ ! -s "$file" ]]; then
        # 16 random bytes in URL-safe base64 without padding (what `random-uuid` prints)
        head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' > "$file"
    fi
    cat "$file"
}

FORMATTED=0  # nodes whose storage this run formatted

format_storage() {
    if [[ -f "$NODE_DATA_DIR/meta.properties" ]]; then
        return  # formatted before: keep the cluster id and the data
    fi
    local id
    id="$(cluster_id)"
    say "Formatting $NODE_DATA_DIR (node $NODE_ID, cluster id $id)"
    FORMATTED=$((FORMATTED + 1))
    # --cluster-id=… because an id may start with "-"
    run_java kafka.tools.StorageTool format --cluster-id="$id" -c "$NODE_CONFIG_FILE" > "$NODE_LOG_DIR/format.log" 2>&1 \
        || { cat "$NODE_LOG_DIR/format.log" >&2; die "formatting the Kafka storage of node $NODE_ID failed"; }
}

prepare_node() {  # checks, directories, configuration and storage of node $1 of a cluster of $2
    set_node "$1" "$2"
    local port dir
    if [[ -f "$NODE_PID_FILE" ]]; then
        say "Removing stale pid file $NODE_PID_FILE (pid $(cat "$NODE_PID_FILE") is not a running broker)"
        rm -f "$NODE_PID_FILE"
    fi
    for port in "$NODE_PORT" "$NODE_CONTROLLER_PORT"; do
        ! port_open "$port" || die "port $port is already in use by another program$( (( $2 > 1 )) && printf ' (node %s)' "$NODE_ID"); stop it or set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
    done
    mkdir -p "$NODE_DIR" "$NODE_DATA_DIR" "$NODE_LOG_DIR" 2>/dev/null || true
    for dir in "$NODE_DIR" "$NODE_DATA_DIR" "$NODE_LOG_DIR"; do
        [[ -d "$dir" && -w "$dir" ]] || die "directory $dir is not writable; fix its permissions or set KAFKA_STATE_DIR"
    done
    write_config "$2"
    format_storage
}

launch_node() {  # starts the prepared node $1 of a cluster of $2 in the background; its pid goes to its pid file
    set_node "$1" "$2"
    say "Starting Kafka $KAFKA_VERSION node $NODE_ID (KRaft) on $KAFKA_HOST:$NODE_PORT, controller on $NODE_CONTROLLER_PORT"
    : > "$NODE_LOG_DIR/server.log"
    local partial="$NODE_DIR/kafka-cds.partial" archive flags
    rm -f "$partial" "$NODE_DIR/cds.note"
    archive="$(cds_archive kafka.Kafka)"
    flags="$(cds_flags "$archive" "$partial")"
    # no archive yet: this broker writes one when it stops cleanly, which stop_kafka.sh keeps (cds_keep_broker)
    [[ "$flags" == *ArchiveClassesAtExit* ]] && printf '%s\n%s\n%s\n' "$partial" "$archive" "$KAFKA_CLASSPATH" > "$NODE_DIR/cds.note"
    # Ctrl-C and SIGTERM wait from the launch until the pid is in its file: in between they would leave a broker
    # that no script knows of (holding the ports), or kill the forked shell before it became the broker. SIGTERM
    # comes from run_pipeline.sh stopping this stage; a broker left there once outlived its run. Either is then
    # taken as it came, the broker known to stop_kafka.sh.
    local deferred=""
    trap 'deferred=INT' INT
    trap 'deferred=TERM' TERM
    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS, KAFKA_JIT_OPTS and flags are lists of JVM flags
    nohup "$JAVA_BIN" $KAFKA_HEAP_OPTS $KAFKA_JIT_OPTS $flags -XX:+UseG1GC -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$NODE_DIR/log4j2.properties" \
        -cp "$KAFKA_CLASSPATH" kafka.Kafka "$NODE_CONFIG_FILE" >> "$NODE_LOG_DIR/server.log" 2>&1 < /dev/null &
    echo "$!" > "$NODE_PID_FILE"
    trap - INT TERM
    [[ -z "$deferred" ]] || kill -s "$deferred" "$$"
}

wait_until_ready() {  # node $1 of a cluster of $2
    set_node "$1" "$2"
    local pid deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    pid="$(cat "$NODE_PID_FILE")"
    until grep -q "Kafka Server started" "$NODE_LOG_DIR/server.log" 2>/dev/null && port_open "$NODE_PORT"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "Node $NODE_ID exited during start-up. Last lines of $NODE_LOG_DIR/server.log:" >&2
            tail -n 30 "$NODE_LOG_DIR/server.log" >&2 || true
            rm -f "$NODE_PID_FILE"
            exit 1
        fi
        if (( SECONDS >= deadline )); then
            say "Node $NODE_ID did not become ready within ${KAFKA_START_TIMEOUT}s. Last lines of $NODE_LOG_DIR/server.log:" >&2
            tail -n 30 "$NODE_LOG_DIR/server.log" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
}

describe_topics() {  # $1: bootstrap list; "Topic: <name> ... PartitionCount: <n>" lines of the three topics
    local pattern
    pattern="$(printf '%s\n' "$PIN_TOPIC" "$GEO_TOPIC" "$USER_TOPIC" | sed 's/[][\.*^$+?(){}|/]/\\&/g' | paste -sd '|')"
    run_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --describe --topic "^($pattern)\$" 2>/dev/null \
        | grep 'PartitionCount' || true
}

partition_count() {  # $1: topic, $2: describe_topics output
    awk -v t="$1" '$1 == "Topic:" && $2 == t { for (i = 1; i < NF; i++) if ($i == "PartitionCount:") print $(i + 1) }' <<<"$2"
}

create_topics() {  # on a cluster of $1 brokers: min($1, 3) replicas, min.insync.replicas 2 with three
    # One JVM describes all three topics (none when every node was formatted just now: there are none); only
    # the missing ones are created, a JVM each, in parallel, and then described until the brokers serve them
    # (a topic the controller has created may not be in a broker's metadata yet). A restart with the topics
    # there, the usual case, costs one tool start (~2 s) instead of six.
    local brokers="$1" topic job jobs=() failed=0 replicas min_isr bootstrap described="" count created=() tries
    replicas=$(( brokers < 3 ? brokers : 3 ))
    min_isr=$(( replicas >= 3 ? 2 : 1 ))
    bootstrap="$(bootstrap_list "$brokers")"
    (( FORMATTED < brokers )) && described="$(describe_topics "$bootstrap")"
    for topic in "$PIN_TOPIC" "$GEO_TOPIC" "$USER_TOPIC"; do
        count="$(partition_count "$topic" "$described")"
        if [[ -n "$count" ]]; then  # an existing topic with another partition count breaks co-partitioning by key
            if [[ "$count" != "$KAFKA_PARTITIONS" ]]; then
                say "warning: topic $topic has $count partitions, not KAFKA_PARTITIONS=$KAFKA_PARTITIONS; the three topics must have equal counts" >&2
                PARTITIONS_NOTE="partitions $PIN_TOPIC $(partition_count "$PIN_TOPIC" "$described"), $GEO_TOPIC $(partition_count "$GEO_TOPIC" "$described"), $USER_TOPIC $(partition_count "$USER_TOPIC" "$described") (before any missing one is created with $KAFKA_PARTITIONS)"
            fi
            continue
        fi
        run_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" \
            --create --if-not-exists --topic "$topic" --partitions "$KAFKA_PARTITIONS" \
            --replication-factor "$replicas" --config "min.insync.replicas=$min_isr" \
            > "$KAFKA_STATE_DIR/topic-$topic.log" 2>&1 &
        jobs+=("$!")
        created+=("$topic")
    done
    for job in ${jobs[@]+"${jobs[@]}"}; do wait "$job" || failed=1; done
    (( failed == 0 )) || { cat "$KAFKA_STATE_DIR"/topic-*.log >&2; die "creating the topics failed"; }
    (( ${#created[@]} )) || return 0
    for (( tries = 1; ; tries++ )); do
        (( tries <= 10 )) || die "topics ${created[*]} were created but the brokers do not list them; see $KAFKA_STATE_DIR/topic-*.log and the server logs"
        (( tries == 1 )) || sleep 0.5
        described="$(describe_topics "$bootstrap")"
        for topic in "${created[@]}"; do
            [[ -n "$(partition_count "$topic" "$described")" ]] || continue 2
        done
        return 0
    done
}

usage() {
    cat <<USAGE
Usage: ./start_kafka.sh [--brokers N] [--node N]

Start Apache Kafka $KAFKA_VERSION in KRaft mode (no ZooKeeper) and create the pipeline's three topics.
Idempotent: nodes already running are left alone (waited for while they start), missing topics created.

  --brokers N   one broker (the default; also KAFKA_BROKERS) on localhost:\$KAFKA_PORT, or a cluster of N
                nodes on this machine, each broker and controller, node K on port KAFKA_PORT+10*(K-1) and
                controller port KAFKA_CONTROLLER_PORT+10*(K-1), state in \$KAFKA_STATE_DIR/node-K/; topics
                get min(N, 3) replicas and, with three, min.insync.replicas=2
  --node N      start only node N of the cluster (after ./stop_kafka.sh --node N)

Environment: KAFKA_BROKERS, KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_STATE_DIR, KAFKA_DATA_DIR, KAFKA_LOG_DIR,
KAFKA_PARTITIONS, KAFKA_HOME, KAFKA_CACHE_DIR, KAFKA_START_TIMEOUT, KAFKA_HEAP_OPTS, KAFKA_JIT_OPTS, KAFKA_CDS, PIN_TOPIC,
GEO_TOPIC, USER_TOPIC (see README).
USAGE
}

main() {
    local brokers="$KAFKA_BROKERS" only="" node pid dir started=() to_start=() running=()
    while (( $# )); do
        case "$1" in
            -h|--help) usage; exit 0 ;;
            --brokers) [[ $# -ge 2 ]] || die "--brokers needs a number"; brokers="$2"; shift 2 ;;
            --brokers=*) brokers="${1#*=}"; shift ;;
            --node) [[ $# -ge 2 ]] || die "--node needs a number"; only="$2"; shift 2 ;;
            --node=*) only="${1#*=}"; shift ;;
            *) usage >&2; die "unknown argument: $1" ;;
        esac
    done
    [[ "$brokers" =~ ^[1-9]$ ]] || die "--brokers must be a number from 1 to 9, not '$brokers'"
    if [[ -n "$only" ]]; then
        [[ "$only" =~ ^[1-9]$ ]] && (( only <= brokers )) || die "--node must be a number from 1 to $brokers, not '$only'"
    fi
    # One state directory holds one kind of installation at a time.
    if (( brokers > 1 )) && pid="$(running_pid "$KAFKA_STATE_DIR")"; then
        die "a single broker (pid $pid) is running from $KAFKA_STATE_DIR; stop it first (./stop_kafka.sh)"
    fi
    if (( brokers == 1 )); then
        for dir in "$KAFKA_STATE_DIR"/node-*; do
            [[ -d "$dir" ]] && pid="$(running_pid "$dir")" \
                && die "a cluster node (pid $pid, $dir) is running from $KAFKA_STATE_DIR; stop it first (./stop_kafka.sh)"
        done
    fi

    for (( node = 1; node <= brokers; node++ )); do
        [[ -z "$only" || "$only" == "$node" ]] || continue
        set_node "$node" "$brokers"
        if pid="$(running_pid "$NODE_DIR")"; then
            if (( brokers == 1 )); then say "Kafka is already running (pid $pid) on $KAFKA_HOST:$NODE_PORT"
            else say "Node $node is already running (pid $pid) on $KAFKA_HOST:$NODE_PORT"; fi
            running+=("$node")
        else
            to_start+=("$node")
        fi
    done
    if (( ${#to_start[@]} )); then
        check_java
        mkdir -p "$KAFKA_STATE_DIR" 2>/dev/null || true
        [[ -d "$KAFKA_STATE_DIR" && -w "$KAFKA_STATE_DIR" ]] \
            || die "directory $KAFKA_STATE_DIR is not writable; fix its permissions or set KAFKA_STATE_DIR"
        locate_kafka
        for node in "${to_start[@]}"; do prepare_node "$node" "$brokers"; done
        # All at once: a controller quorum needs a majority of its voters up before any of them is ready.
        for node in "${to_start[@]}"; do launch_node "$node" "$brokers"; started+=("$node"); done
        for node in "${started[@]}"; do wait_until_ready "$node" "$brokers"; done
    elif [[ -n "$only" ]]; then
        exit 0
    fi
    # A node found running may still be starting (an earlier start interrupted by Ctrl-C): wait for it, and
    # then create whatever topics that start did not get to.
    for node in ${running[@]+"${running[@]}"}; do wait_until_ready "$node" "$brokers"; done
    [[ -n "$only" ]] && { say "Node $only is ready on $KAFKA_HOST:$((KAFKA_PORT + (only - 1) * KAFKA_NODE_PORT_STEP))"; exit 0; }
    [[ -n "${KAFKA_CLASSPATH:-}" ]] || locate_kafka
    PARTITIONS_NOTE="$KAFKA_PARTITIONS partitions"  # what the topics have; create_topics says otherwise
    create_topics "$brokers"
    if (( brokers == 1 )); then
        say "Kafka is ready (pid $(cat "$KAFKA_STATE_DIR/kafka.pid")); topics $PIN_TOPIC, $GEO_TOPIC, $USER_TOPIC with $PARTITIONS_NOTE. Logs: $KAFKA_LOG_DIR/server.log"
    else
        say "Kafka cluster of $brokers nodes is ready; topics $PIN_TOPIC, $GEO_TOPIC, $USER_TOPIC with $PARTITIONS_NOTE, $(( brokers < 3 ? brokers : 3 )) replicas each. Logs: $KAFKA_STATE_DIR/node-*/logs/server.log"
    fi
    say "Bootstrap servers: $(bootstrap_list "$brokers")"
    (( brokers == 1 )) || say "Use them: export KAFKA_BOOTSTRAP_SERVERS=$(bootstrap_list "$brokers")"
}

main "$@"
