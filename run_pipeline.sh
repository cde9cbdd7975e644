#!/usr/bin/env bash
# Run the whole pipeline on a fresh machine (needs only Python 3.10+ and Java 17+):
#   .venv (and Spark's class archive, once) -> Kafka (KRaft) -> embedded PostgreSQL (seeded when empty) -> poster + emulator until N triplets
#   are acknowledged -> extractor writes one batch of N -> the Spark notebook runs headless -> summary.
# Stops what it started and leaves running what was running before.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source scripts/venv.sh
source scripts/kafka_common.sh  # kafka_running: is our broker (or cluster) up already?

COUNT="${PIPELINE_COUNT:-500}"
RATE="${PIPELINE_RATE:-0}"
KEEP_SERVICES="${PIPELINE_KEEP_SERVICES:-0}"
STREAM="${PIPELINE_STREAM:-0}"
PRESTART="${PIPELINE_PRESTART_SPARK:-1}"
WARM_UP="${PIPELINE_WARM_UP:-1}"
BACKLOG_MAX="${PIPELINE_BACKLOG_MAX:-100000}"

usage() {
    cat <<USAGE
Usage: ./run_pipeline.sh [--count N] [--rate R] [--stream] [--keep-services]

  --count N         triplets to post, extract and analyse (default 500; env PIPELINE_COUNT). The batch also
                    takes what the topics held before the run and no batch has taken yet (records posted by
                    hand, idx left pending): up to PIPELINE_BACKLOG_MAX more triplets (default 100000)
  --rate R          emulator triplets per second, 0 = as fast as possible (default 0; env PIPELINE_RATE)
  --stream          also run the streaming notebook (availableNow) over the topics, beside the batch one; its tables and
                    checkpoints go to \$STREAM_DIR (default stream_data) and carry on from run to run
                    (env PIPELINE_STREAM=1)
  --keep-services   leave Kafka and PostgreSQL running afterwards (env PIPELINE_KEEP_SERVICES=1)

The notebook's kernel and Spark session start at the beginning, beside the other stages, and the notebook
runs once the batch is written; PIPELINE_PRESTART_SPARK=0 starts them only then. While it waits, the early
session runs the notebook's steps on a tiny built-in batch (JIT warm-up), and stops at the step it is in when
the batch is written; PIPELINE_WARM_UP=0 leaves it idle.

Every setting in README's configuration table applies (KAFKA_PORT, BATCH_DIR, POSTER_PORT, ...).
Logs of each stage go to \$BATCH_DIR/logs/.
USAGE
}

while (( $# )); do
    case "$1" in
        --count|--rate)
            (( $# >= 2 )) || { usage >&2; say "error: $1 needs a value" >&2; exit 2; }
            if [[ "$1" == --count ]]; then COUNT="$2"; else RATE="$2"; fi
            shift 2 ;;
        --count=*) COUNT="${1#*=}"; shift ;;
        --rate=*) RATE="${1#*=}"; shift ;;
        --stream) STREAM=1; shift ;;
        --keep-services) KEEP_SERVICES=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; say "error: unknown argument: $1" >&2; exit 2 ;;
    esac
done
# Checked here, before anything starts, not by the stage that would take them minutes later.
[[ "$COUNT" =~ ^[1-9][0-9]*$ ]] || { say "error: --count must be a positive integer, not '$COUNT'" >&2; exit 2; }
[[ "$RATE" =~ ^([0-9]+(\.[0-9]*)?|\.[0-9]+)$ ]] \
    || { say "error: --rate must be 0 (as fast as possible) or a positive number, not '$RATE'" >&2; exit 2; }
[[ "$BACKLOG_MAX" =~ ^[0-9]+$ ]] || { say "error: PIPELINE_BACKLOG_MAX must be 0 or a positive integer" >&2; exit 2; }

BATCH_DIR="${BATCH_DIR:-batch_data}"
STREAM_DIR="${STREAM_DIR:-stream_data}"
LOG_DIR="$BATCH_DIR/logs"
BOOTSTRAP_GIVEN="${KAFKA_BOOTSTRAP_SERVERS:-}"  # a Kafka of the user's own, or ours (the default)
export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-$KAFKA_HOST:$KAFKA_PORT}"
export BATCH_DIR
TIMINGS=()
KAFKA_STARTED=0

KAFKA_STOPPING=""  # pid of a stop_kafka.sh running in the background

stop_kafka() {
    ./stop_kafka.sh >> "$LOG_DIR/kafka.log" 2>&1 || say "warning: stopping Kafka failed; see $LOG_DIR/kafka.log" >&2
}

NOTEBOOK_PID=""  # the batch notebook's runner, started early (it waits for the batch)
STREAM_PID=""  # the streaming notebook's runner (--stream)

# One run at a time per BATCH_DIR: two would write the same logs and batch folder (and trip over each other's
# Kafka, poster port and database). The run's pid in LOCK says who holds it; one that is dead, or is no longer
# this script (its pid reused), held it last and is taken over.
LOCK="$BATCH_DIR/.run_pipeline.pid"
take_lock() {
    local holder attempt
    mkdir -p "$BATCH_DIR"
    for attempt in 1 2; do
        if (set -C; printf '%s\n' "$$" > "$LOCK") 2>/dev/null; then
            return 0
        fi
        holder="$(cat "$LOCK" 2>/dev/null || true)"
        if [[ "$holder" =~ ^[0-9]+$ ]] && kill -0 "$holder" 2>/dev/null \
            && { [[ ! -r "/proc/$holder/cmdline" ]] || grep -qa run_pipeline "/proc/$holder/cmdline"; }; then
            say "error: another ./run_pipeline.sh (pid $holder) is running with BATCH_DIR=$BATCH_DIR; wait for it" \
                "to end, or give this one its own BATCH_DIR, KAFKA_PORT, POSTER_PORT and PGDATA_DIR" >&2
            exit 1
        fi
        rm -f "$LOCK"  # its holder is gone (killed before it could remove it)
    done
    say "error: cannot take $LOCK (another run keeps taking it)" >&2
    exit 1
}

cleanup() {
    local pid
    for pid in $NOTEBOOK_PID $STREAM_PID; do  # a stage failed: a runner stops its kernel and Spark
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "$KAFKA_STOPPING" ]]; then
        wait "$KAFKA_STOPPING" || true
    elif [[ "$KAFKA_STARTED" == 1 && "$KEEP_SERVICES" != 1 ]]; then
        stop_kafka
    fi
    if [[ "$(cat "$LOCK" 2>/dev/null || true)" == "$$" ]]; then rm -f "$LOCK"; fi  # last: all is stopped
}
trap cleanup EXIT
take_lock

# Ctrl-C (SIGINT), or SIGTERM from `timeout` or a supervisor, stops the run at once, in whatever stage: the
# stage is asked to stop (SIGTERM: the poster finishes its in-flight posts, the extractor writes no partial
# batch) and waited for, then the EXIT trap stops what the run started. A stage runs in the background for this
# (a signal's trap runs only once a foreground command ends): SIGTERM used to end this script alone and leave the
# poster posting and the database running, and a stage that took Ctrl-C as a request to finish (Kafka's start)
# let the run go on to the next stage.
CURRENT_STAGE=""
STAGE_PID=""
SETUP_GROUP=""
interrupted() {  # STATUS: 130 (SIGINT) or 143 (SIGTERM)
    say "error: interrupted ($( (( $1 == 130 )) && echo SIGINT || echo SIGTERM ))${CURRENT_STAGE:+ in stage '$CURRENT_STAGE'};" \
        "stopping what this run started" >&2
    if [[ -n "${SETUP_GROUP:-}" ]]; then  # the set-up's whole process group: the installer, a JVM
        stop_group "$SETUP_GROUP"
    fi
    if [[ -n "${STAGE_PID:-}" ]]; then
        kill -TERM "$STAGE_PID" 2>/dev/null || true
        wait "$STAGE_PID" 2>/dev/null || true
    fi
    exit "$1"
}
trap 'interrupted 130' INT

# stage NAME LOG COMMAND...: run one stage with its output in LOG; on failure name it and show the log's tail.
stage() {
    local name="$1" log="$2" started=$SECONDS status=0
    shift 2
    say "==> $name"
    CURRENT_STAGE="$name"
    "$@" > "$log" 2>&1 &
    STAGE_PID=$!
    wait "$STAGE_PID" || status=$?
    STAGE_PID=""
    stage_done "$name" "$log" "$status" "$started"
}

why() {  # LOG: why a stage failed: its log from the last line that says "error: " (the stage's own words, after
    # whatever Spark or Java printed before them), else the log's last lines
    local from
    from="$(grep -in '^error: ' "$1" 2>/dev/null | tail -n 1 | cut -d: -f1 || true)"  # no such line: grep says 1
    if [[ -n "$from" ]]; then
        tail -n +"$from" "$1" | head -n 25 || true  # head stops reading early: tail may get SIGPIPE
    else
        tail -n 25 "$1" 2>/dev/null || true
    fi
}

stage_done() {  # NAME LOG STATUS STARTED: stop on a failed stage, else note its time
    CURRENT_STAGE=""
    if (( $3 == 130 || $3 == 143 )); then  # Ctrl-C reached the stage (or it was sent SIGTERM): its log is noise
        CURRENT_STAGE="$1" interrupted "$3"
    fi
    if (( $3 != 0 )); then
        say "error: stage '$1' failed (exit $3). Log: $2" >&2
        why "$2" >&2
        exit 1
    fi
    TIMINGS+=("--timing" "$1=$((SECONDS - $4))")
}

runner_done() {  # NAME LOG PID_VARIABLE: wait for a notebook runner (its time counts from the batch), clear its pid
    local status=0
    CURRENT_STAGE="$1"
    wait "${!3}" || status=$?
    printf -v "$3" '%s' ""
    stage_done "$1" "$2" "$status" "$spark_started"
}

started_all=$SECONDS
mkdir -p "$LOG_DIR"
venv_started=$SECONDS
trap 'interrupted 143' TERM
# The set-up: .venv, then Spark's class archive (Spark drivers start faster with it; built once,
# pinpipe/spark/class_archive.py), minutes on a fresh clone. It runs in the background as a process group of its own
# (setsid), so that a signal to this script alone (`kill PID`, a supervisor that signals the main process) stops it
# at once and everything it runs with it: SIGTERM used to end the script and leave the installer writing into
# .venv, where the next run's would have raced it, and SIGINT waited for the install to end. (`timeout` and Ctrl-C
# signal the whole process group; the trap stops the set-up's group then too.)
CURRENT_STAGE=setup
$OWN_GROUP bash -c 'set -euo pipefail; source scripts/venv.sh; ensure_venv; .venv/bin/python -m pinpipe.spark.class_archive' &
SETUP_GROUP=$!  # setsid, not a group leader here, makes its own pid the group's
setup_status=0
wait "$SETUP_GROUP" || setup_status=$?
SETUP_GROUP=""
CURRENT_STAGE=""
(( setup_status == 0 )) || exit "$setup_status"  # ensure_venv or the archive's build said why
PY=.venv/bin/python
TIMINGS+=("--timing" "setup=$((SECONDS - venv_started))")

# The batch notebook runs headless (papermill) and is rendered to report.html by one runner
# (pinpipe/notebook_report.py). It starts now: its kernel and Spark session come up beside Kafka, the poster
# and the extractor, and it runs the notebook once the batch is written (--when-exists); the JVM's flags follow
# the batch's expected size. PIPELINE_PRESTART_SPARK=0: the runner starts only then (a 4g driver heap is not
# held meanwhile).
BATCH_WRITTEN="$LOG_DIR/.batch-written"
rm -f "$BATCH_WRITTEN"
start_notebook() {  # [--when-exists FILE --prestart-spark small|large|TRIPLETS]
    $PY -m pinpipe.notebook_report batch_processing_spark.ipynb "$BATCH_DIR/report.ipynb" \
        --html "$BATCH_DIR/report.html" -p input_dir "$BATCH_DIR" -p output_dir "$BATCH_DIR/results" "$@" \
        > "$LOG_DIR/notebook.log" 2>&1 &
    NOTEBOOK_PID=$!
}
# --stream: the streaming notebook runs beside the batch one, from the same moment (two JVMs on two cores
# finish sooner than one after the other: README, Quickstart).
start_stream() {  # [--when-exists FILE]
    mkdir -p "$STREAM_DIR"
    $PY -m pinpipe.notebook_report stream_processing_spark.ipynb "$STREAM_DIR/report.ipynb" \
        -p output_dir "$STREAM_DIR/tables" -p checkpoint_dir "$STREAM_DIR/checkpoints" "$@" > "$LOG_DIR/stream.log" 2>&1 &
    STREAM_PID=$!
}
if [[ "$PRESTART" == 1 ]]; then
    start_notebook --when-exists "$BATCH_WRITTEN" --prestart-spark "$COUNT" \
        $( [[ "$WARM_UP" == 1 ]] && echo --warm-up )
    if [[ "$STREAM" == 1 ]]; then start_stream --when-exists "$BATCH_WRITTEN"; fi
fi

if kafka_running; then
    # A cluster with nodes stopped (./stop_kafka.sh --node N, or crashed) is said, and refused without a majority
    # (no controller quorum: nothing can be written) instead of the poster waiting a minute for acknowledgements.
    read -r NODES RUNNING STOPPED <<< "$(cluster_state)"
    if [[ -n "${STOPPED:-}" ]]; then
        STOPPED="$(node_list "$STOPPED")"
        START_AGAIN="./start_kafka.sh --brokers $NODES (it starts only the stopped nodes)"
        if without_quorum "$NODES" "$RUNNING"; then
            say "error: only $RUNNING of the $NODES nodes of the Kafka cluster in $KAFKA_STATE_DIR run (stopped:" \
                "$STOPPED); without $(( NODES / 2 + 1 )) it has no controller quorum and takes no writes. Start" \
                "them again: $START_AGAIN" >&2
            exit 1
        fi
        say "warning: $RUNNING of the $NODES nodes of the Kafka cluster in $KAFKA_STATE_DIR run (stopped: $STOPPED);" \
            "the run goes on with them, with less room for another failure. Start" \
            "$( (( NODES - RUNNING == 1 )) && echo it || echo them) again: $START_AGAIN" >&2
    fi
    say "==> kafka: already running; it will be left running"
elif [[ -n "$BOOTSTRAP_GIVEN" ]] && $PY -m pinpipe.common.brokers "$KAFKA_BOOTSTRAP_SERVERS" >/dev/null; then
    # a Kafka of the user's own (README: "run your own broker and point KAFKA_BOOTSTRAP_SERVERS at it")
    say "==> kafka: using KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS, which answers; it will be left running"
elif [[ -n "$BOOTSTRAP_GIVEN" && ",$KAFKA_BOOTSTRAP_SERVERS," != *",$KAFKA_HOST:$KAFKA_PORT,"* ]]; then
    say "error: no server of KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS answers. Start that Kafka, or unset" \
        "KAFKA_BOOTSTRAP_SERVERS and the run starts its own on $KAFKA_HOST:$KAFKA_PORT" >&2
    exit 1
else
    KAFKA_STARTED=1  # before the stage: a run interrupted while Kafka starts stops what did start
    stage kafka "$LOG_DIR/kafka.log" ./start_kafka.sh
fi

# The poster starts the embedded PostgreSQL itself (seeding it when empty) and stops it when done,
# unless it was running before or the services are to be kept.
if [[ -z "${DATABASE_URL:-}" ]] && { [[ "$KEEP_SERVICES" == 1 ]] || $PY -m pinpipe.source.embedded_pg status >/dev/null 2>&1; }; then
    export KEEP_DATABASE_RUNNING=1
fi

# What the topics hold that no batch has taken yet (posted by hand, or pending since an earlier run): the
# batch takes it too, oldest first, up to BACKLOG_MAX triplets more than this run posts, and the summary
# counts it apart from this run's posts. Measured before posting; unknown (a warning) if the broker will not say.
BACKLOG_ARGS=()
TAKE="$COUNT"
BACKLOG=""
if $PY -m pinpipe.extraction.backlog --limit $(( BACKLOG_MAX + 1 )) > "$LOG_DIR/backlog.log" 2>&1; then
    BACKLOG="$(sed -n -e 's/^backlog: \([0-9]*\) triplets at most$/\1/p' \
        -e 's/^backlog: at least \([0-9]*\) records a topic.*/\1/p' "$LOG_DIR/backlog.log")"
fi
if [[ -n "$BACKLOG" ]]; then
    BACKLOG_ARGS=(--backlog "$BACKLOG" --backlog-max "$BACKLOG_MAX")
    TAKE=$(( COUNT + (BACKLOG < BACKLOG_MAX ? BACKLOG : BACKLOG_MAX) ))
    if (( BACKLOG > BACKLOG_MAX )); then
        say "==> backlog: the topics hold more than PIPELINE_BACKLOG_MAX=$BACKLOG_MAX triplets' worth of records from before this run;" \
            "the batch takes the oldest $TAKE triplets, and what it leaves (some of this run's posts) waits for later runs"
    elif (( BACKLOG > 0 )); then
        say "==> backlog: the topics hold up to $BACKLOG triplets from before this run; the batch takes them too"
    fi
else
    say "warning: could not measure what the topics held before this run (see $LOG_DIR/backlog.log);" \
        "the batch takes at most $COUNT triplets" >&2
fi

# A Kafka that stops answering (it crashed, ran out of disk) fails the stage after a minute instead of the
# emulator retrying for ever.
stage poster "$LOG_DIR/poster.log" $PY data_poster.py --count "$COUNT" --rate "$RATE" --give-up-after 60
POSTED="$(sed -n 's/^triplets acknowledged by Kafka: \([0-9]*\)$/\1/p' "$LOG_DIR/poster.log" | tail -n 1)"

# Everything is in Kafka by now. The emulator samples with replacement, so N posts hold fewer than N
# distinct idx: the batch is every complete triplet there is (--allow-partial), repeats counted as duplicates;
# --until-end stops at the end of the topics instead of waiting out --timeout.
batches_written() { { ls -1 "$BATCH_DIR/batches" 2>/dev/null || true; } | { grep -c '^[0-9]' || true; }; }
require_new_batch() {  # BEFORE: stop the run if the extractor wrote no batch (the notebook would analyse an older one)
    if (( $(batches_written) == $1 )); then
        say "error: stage 'extractor' wrote no batch: none of this run's ${POSTED:-0} triplets reached it complete." \
            "Log: $LOG_DIR/extractor.log" >&2
        why "$LOG_DIR/extractor.log" >&2
        exit 1
    fi
}
BATCHES_BEFORE="$(batches_written)"
stage extractor "$LOG_DIR/extractor.log" $PY batch_extractor.py --count "$TAKE" --timeout 5 --allow-partial --until-end --no-progress
require_new_batch "$BATCHES_BEFORE"

# Nothing reads Kafka after this unless the stream runs: stop it while Spark works (cleanup waits for it).
if [[ "$KAFKA_STARTED" == 1 && "$KEEP_SERVICES" != 1 && "$STREAM" != 1 ]]; then
    stop_kafka &
    KAFKA_STOPPING=$!
fi

say "==> spark"
spark_started=$SECONDS
touch "$BATCH_WRITTEN"  # the waiting runners start their notebooks
[[ -n "$NOTEBOOK_PID" ]] || start_notebook
[[ "$STREAM" != 1 || -n "$STREAM_PID" ]] || start_stream
runner_done spark "$LOG_DIR/notebook.log" NOTEBOOK_PID
grep -h "^warning: could not render" "$LOG_DIR/notebook.log" >&2 || true

STREAM_ARGS=()
if [[ "$STREAM" == 1 ]]; then
    say "==> stream (started with spark)"
    runner_done stream "$LOG_DIR/stream.log" STREAM_PID
    STREAM_ARGS=(--stream-dir "$STREAM_DIR")
fi
rm -f "$BATCH_WRITTEN"

TIMINGS+=("--timing" "total=$((SECONDS - started_all))")
$PY -m pinpipe.pipeline_summary --batch-dir "$BATCH_DIR" --posted "${POSTED:-0}" "${BACKLOG_ARGS[@]}" "${STREAM_ARGS[@]}" "${TIMINGS[@]}"
