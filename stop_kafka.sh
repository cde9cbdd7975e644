#!/usr/bin/env bash
# Stop the Kafka broker or cluster nodes started by start_kafka.sh: SIGTERM for a controlled shutdown, SIGKILL
# only after KAFKA_STOP_TIMEOUT seconds (a cluster without a controller quorum, which can approve none: 5 s). Idempotent; finds nodes by their pid files, never by process name.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/kafka_common.sh"

usage() {
    cat <<USAGE
Usage: ./stop_kafka.sh [--node N]

Stop every Kafka node that start_kafka.sh started from \$KAFKA_STATE_DIR (all at once, each with a controlled
shutdown, killed if still running after KAFKA_STOP_TIMEOUT seconds, default 60), or only node N of a cluster. A cluster with
fewer than a majority of its nodes running has no controller quorum to approve a controlled shutdown: its
nodes are killed after 5 s instead (each checks its logs on its next start). Environment: KAFKA_STATE_DIR,
KAFKA_STOP_TIMEOUT (see README).
USAGE
}

only=""
while (( $# )); do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --node) [[ $# -ge 2 ]] || die "--node needs a number"; only="$2"; shift 2 ;;
        --node=*) only="${1#*=}"; shift ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

dirs=()
if [[ -n "$only" ]]; then
    [[ "$only" =~ ^[1-9]$ ]] || die "--node must be a number from 1 to 9, not '$only'"
    dirs=("$KAFKA_STATE_DIR/node-$only")
else
    mapfile -t dirs < <(known_node_dirs)
fi

pids=() names=()
for dir in "${dirs[@]}"; do
    name="Kafka"
    [[ "$dir" == "$KAFKA_STATE_DIR" ]] || name="Kafka node ${dir##*/node-}"
    if pid="$(running_pid "$dir")"; then
        pids+=("$pid")
        names+=("$name")
    elif [[ -f "$dir/kafka.pid" ]]; then
        say "Removing stale pid file $dir/kafka.pid"
        rm -f "$dir/kafka.pid"
    fi
done
if (( ${#pids[@]} == 0 )); then
    if [[ -n "$only" ]]; then say "Kafka node $only is not running"; else say "Kafka is not running"; fi
    exit 0
fi

# A cluster node's controlled shutdown waits for the active controller to approve it. Without a controller quorum
# (a majority of the nodes running) no approval comes, and each node waited out KAFKA_STOP_TIMEOUT before being
# killed: then it gets NO_QUORUM_STOP_S. Killed, a broker loses nothing written (its records are in the page
# cache); it checks its logs on the next start.
NO_QUORUM_STOP_S=5
wait_s="$KAFKA_STOP_TIMEOUT" quorum=1
read -r nodes running stopped <<< "$(cluster_state)"
if [[ -n "${stopped:-}" ]] && without_quorum "$nodes" "$running"; then
    wait_s="$NO_QUORUM_STOP_S" quorum=0
    say "The cluster has no controller quorum ($running of its $nodes nodes running; stopped: $(node_list "$stopped")):" \
        "no controlled shutdown can be approved, so each node is killed after ${wait_s}s (it checks its logs on its next start)"
fi
for i in "${!pids[@]}"; do
    say "Stopping ${names[$i]} (pid ${pids[$i]})"
    kill -TERM "${pids[$i]}"
done
deadline=$((SECONDS + wait_s))
for i in "${!pids[@]}"; do
    while kill -0 "${pids[$i]}" 2>/dev/null; do
        if (( SECONDS >= deadline )); then
            if (( quorum )); then  # else the kill was said above
                say "warning: ${names[$i]} did not stop within ${KAFKA_STOP_TIMEOUT}s; killing it (unflushed data may be recovered from the log on next start)" >&2
            fi
            kill -KILL "${pids[$i]}" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
done
for dir in "${dirs[@]}"; do
    [[ -f "$dir/kafka.pid" ]] && ! running_pid "$dir" >/dev/null && rm -f "$dir/kafka.pid"
    cds_keep_broker "$dir"  # the class archive a first broker wrote as it stopped (kafka_common.sh)
done
if [[ "${names[*]}" == "Kafka" ]]; then
    say "Kafka stopped"
elif (( ${#names[@]} == 1 )); then
    say "${names[0]} stopped"
else
    numbers="${names[*]//Kafka node /}"
    say "Kafka nodes ${numbers// /, } stopped"
fi
