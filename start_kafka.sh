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
        fetch_kafka
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

write_config() {
    cat > "$KAFKA_CONFIG_FILE" <<CONF
# Written by start_kafka.sh: single-node KRaft, broker and controller in one process.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DATA_DIR
num.partitions=$KAFKA_PARTITIONS
# One broker: internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Topics are created by this script with the shared partition count; a typo must not create one.
auto.create.topics.enable=false
CONF
    cat > "$KAFKA_STATE_DIR/log4j2.properties" <<'LOG'
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

run_java() {  # a short-lived Kafka tool in a JVM tuned for start-up time
    "$JAVA_BIN" -Xshare:auto -XX:TieredStopAtLevel=1 -Xmx256m \
        -Dlog4j2.configurationFile="$KAFKA_STATE_DIR/log4j2-tools.properties" \
        -cp "$KAFKA_CLASSPATH" "$@"
}

format_storage() {
    if [[ -f "$KAFKA_DATA_DIR/meta.properties" ]]; then
        return  # formatted before: keep the cluster id and the data
    fi
    local cluster_id
    # A cluster id is 16 random bytes in URL-safe base64 without padding (what `random-uuid` prints);
    # it may start with "-", hence --cluster-id=…
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    say "Formatting $KAFKA_DATA_DIR (cluster id $cluster_id)"
    run_java kafka.tools.StorageTool format --cluster-id="$cluster_id" -c "$KAFKA_CONFIG_FILE" > "$KAFKA_LOG_DIR/format.log" 2>&1 \
        || { cat "$KAFKA_LOG_DIR/format.log" >&2; die "formatting the Kafka storage failed"; }
}

wait_until_ready() {
    local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    until grep -q "Kafka Server started" "$KAFKA_LOG_DIR/server.log" 2>/dev/null && port_open "$KAFKA_PORT"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "The broker exited during start-up. Last lines of $KAFKA_LOG_DIR/server.log:" >&2
            tail -n 30 "$KAFKA_LOG_DIR/server.log" >&2 || true
            rm -f "$KAFKA_PID_FILE"
            exit 1
        fi
        if (( SECONDS >= deadline )); then
            say "The broker did not become ready within ${KAFKA_START_TIMEOUT}s. Last lines of $KAFKA_LOG_DIR/server.log:" >&2
            tail -n 30 "$KAFKA_LOG_DIR/server.log" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
}

create_topics() {
    local topic job jobs=() failed=0
    for topic in "$PIN_TOPIC" "$GEO_TOPIC" "$USER_TOPIC"; do
        run_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" \
            --create --if-not-exists --topic "$topic" --partitions "$KAFKA_PARTITIONS" --replication-factor 1 \
            > "$KAFKA_LOG_DIR/topic-$topic.log" 2>&1 &
        jobs+=("$!")
    done
    for job in "${jobs[@]}"; do wait "$job" || failed=1; done
    (( failed == 0 )) || { cat "$KAFKA_LOG_DIR"/topic-*.log >&2; die "creating the topics failed"; }
    check_partitions
}

check_partitions() {  # an existing topic with another partition count breaks co-partitioning by key
    local topic described count
    for topic in "$PIN_TOPIC" "$GEO_TOPIC" "$USER_TOPIC"; do
        described="$(run_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" \
            --describe --topic "$topic" 2>/dev/null | grep -m 1 'PartitionCount' || true)"
        count="$(sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' <<<"$described")"
        [[ "$count" == "$KAFKA_PARTITIONS" ]] \
            || say "warning: topic $topic has ${count:-?} partitions, not KAFKA_PARTITIONS=$KAFKA_PARTITIONS; the three topics must have equal counts" >&2
    done
}

main() {
    if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
        sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//'
        say "Environment: KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_STATE_DIR, KAFKA_DATA_DIR, KAFKA_LOG_DIR,"
        say "KAFKA_PARTITIONS, KAFKA_HOME, KAFKA_CACHE_DIR, KAFKA_START_TIMEOUT, PIN_TOPIC, GEO_TOPIC, USER_TOPIC (see README)."
        exit 0
    fi
    local pid
    if pid="$(running_pid)"; then
        say "Kafka is already running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT"
        exit 0
    fi
    if [[ -f "$KAFKA_PID_FILE" ]]; then
        say "Removing stale pid file $KAFKA_PID_FILE (pid $(cat "$KAFKA_PID_FILE") is not a running broker)"
        rm -f "$KAFKA_PID_FILE"
    fi
    check_java
    for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        ! port_open "$port" || die "port $port is already in use by another program; stop it or set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
    done
    mkdir -p "$KAFKA_STATE_DIR" "$KAFKA_DATA_DIR" "$KAFKA_LOG_DIR" 2>/dev/null || true
    for dir in "$KAFKA_STATE_DIR" "$KAFKA_DATA_DIR" "$KAFKA_LOG_DIR"; do
        [[ -d "$dir" && -w "$dir" ]] || die "directory $dir is not writable; fix its permissions or set KAFKA_STATE_DIR"
    done
    locate_kafka
    write_config
    format_storage

    say "Starting Kafka $KAFKA_VERSION (KRaft) on $KAFKA_HOST:$KAFKA_PORT, controller on $KAFKA_CONTROLLER_PORT"
    : > "$KAFKA_LOG_DIR/server.log"
    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is a list of JVM flags
    nohup "$JAVA_BIN" $KAFKA_HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_STATE_DIR/log4j2.properties" \
        -cp "$KAFKA_CLASSPATH" kafka.Kafka "$KAFKA_CONFIG_FILE" >> "$KAFKA_LOG_DIR/server.log" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" > "$KAFKA_PID_FILE"
    wait_until_ready "$pid"
    create_topics
    say "Kafka is ready (pid $pid); topics $PIN_TOPIC, $GEO_TOPIC, $USER_TOPIC with $KAFKA_PARTITIONS partitions. Logs: $KAFKA_LOG_DIR/server.log"
}

main "$@"
