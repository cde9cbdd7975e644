"""The extractor's place in its consumer group: its static member id, the consumer itself (read_committed,
range assignment), positioning each assigned partition from the manifests through the ledger, and revocations."""
from __future__ import annotations

import fcntl
import hashlib
import itertools
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer
from kafka.admin import MemberToRemove
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata, TopicPartition

from pinpipe.common.brokers import answering, reachable
from pinpipe.common.config import Settings
from pinpipe.extraction import batch_store
from pinpipe.extraction.ledger import Ledger

log = logging.getLogger(__name__)

# A member that stops heartbeating (a killed extractor) is dropped after kafka-python's session timeout (45 s).
# Extractors are static members by default (see MemberSlot), so a restart after a crash takes the dead
# member's place, and its partitions, at once instead; a dynamic member (--instance-id dynamic) waits.
# A 10 s session would bound the dynamic wait near 15 s, but shorter session and rebalance timeouts stalled
# groups now and then with kafka-python 3.0 in our tests, so that default stays.
SESSION_TIMEOUT_S = 45
DYNAMIC = "dynamic"  # the --instance-id (EXTRACTOR_INSTANCE_ID) that asks for a dynamic member
SLOTS_DIR = ".members"  # under the batch directory: one lock file per extractor slot

# A group leader whose metadata does not know the topics yet assigns nothing to anyone, and kafka-python may
# not notice (dpkp/kafka-python#2377; seen here after a rolling restart). An empty assignment that lasts this
# long is retried: fresh metadata, then a rejoin, a few times (a member of a group with more members than
# partitions is legitimately idle and should not keep the group rebalancing).
EMPTY_ASSIGNMENT_RETRY_S = 5.0
EMPTY_ASSIGNMENT_RETRIES = 3


def topic_ids(consumer: KafkaConsumer, topics) -> dict[str, str]:
    """topic -> Kafka's id of its log (KIP-516), from the client's metadata; kafka-python has no public accessor,
    so a client without one gives none (and manifests then carry no ids)."""
    cluster = getattr(getattr(consumer, "_client", None), "cluster", None)
    ids = {topic: getattr(cluster, "topic_id", lambda _: None)(topic) for topic in topics}
    return {topic: str(topic_id) for topic, topic_id in ids.items() if topic_id}


ResumePoints = dict[batch_store.TopicPartitionKey, batch_store.PartitionResume]


def resume_points_for(batch_dir: Path, ids: dict[str, str], ends: dict[TopicPartition, int],
                      starts: dict[TopicPartition, int] | None = None) -> ResumePoints:
    """The batches' resume points for the partitions in `ends` (their end offsets now), leaving out those of
    another log by the same name: a topic created again, or the same name on another cluster (a single broker
    and the three-broker cluster keep separate logs). Either would make the extractor skip records it never
    wrote. Manifests carry each log's id; older ones without it are caught when their cursor lies beyond the
    log's end. With `starts` (the logs' first offsets now), carried records deleted since are dropped too."""
    manifests = batch_store.read_manifests(batch_dir)
    points = batch_store.resume_points(manifests, ids)
    newest = batch_store.resume_points(manifests)  # whatever the log
    if foreign := sorted({tp.topic for tp in ends if (tp.topic, tp.partition) in newest
                          and newest[(tp.topic, tp.partition)] != points.get((tp.topic, tp.partition))}):
        log.warning("the newest batches in %s read other logs named %s (created again, or on another cluster); "
                    "their offsets do not apply here, so these topics resume from their own batches, else from the "
                    "group's committed offsets or their start", batch_dir, ", ".join(foreign))
    beyond = sorted((tp, points[(tp.topic, tp.partition)]) for tp, end in ends.items()
                    if (tp.topic, tp.partition) in points and points[(tp.topic, tp.partition)].cursor > end)
    if beyond:
        log.warning("batches in %s end beyond the end of these logs: %s; they read other logs of these names (created "
                    "again, or on another cluster), so these partitions resume from the group's committed offsets or "
                    "their start", batch_dir, ", ".join(f"{tp.topic}[{tp.partition}] (batch {point.batch_id} at "
                                                       f"{point.cursor}, log end {ends[tp]})" for tp, point in beyond))
    for tp, _ in beyond:
        del points[(tp.topic, tp.partition)]
    return without_deleted(points, starts or {})


def without_deleted(points: ResumePoints, starts: dict[TopicPartition, int]) -> ResumePoints:
    """The resume points less the carried records that are no longer in their log (below its first offset:
    deleted by Kafka's retention, 7 days by default, or by delete-records), and less the carried records of the
    other topics that can no longer complete without them (the same idx in the same partition number, no other
    record of the deleted one's topic carried for it). Kept, they would stay pending in every batch and hold the
    group's committed offset below the log's start."""
    deleted: list[str] = []
    lost_idx: dict[str, set[tuple[int, int]]] = {}  # topic -> (partition, idx) of its deleted carried records
    for tp, start in sorted(starts.items()):
        point = points.get((tp.topic, tp.partition))
        if point is None or not (gone := sorted(offset for offset in point.carried if offset < start)):
            continue
        points[(tp.topic, tp.partition)] = replace(point, carried=point.carried - set(gone))
        lost_idx.setdefault(tp.topic, set()).update(
            (tp.partition, point.carried_idx[offset]) for offset in gone if offset in point.carried_idx)
        deleted.append(f"{tp.topic}[{tp.partition}] {len(gone)} (offsets {gone[0]}..{gone[-1]}, log starts at {start})")
    if not deleted:
        return points
    missing = {topic: keys - _carried_keys(points, topic) for topic, keys in lost_idx.items()}  # no copy left
    orphans = 0
    for (topic, partition), point in list(points.items()):
        incomplete = set().union(*(keys for other, keys in missing.items() if other != topic))
        if lost := {offset for offset in point.carried if (partition, point.carried_idx.get(offset)) in incomplete}:
            points[(topic, partition)] = replace(point, carried=point.carried - lost)
            orphans += len(lost)
    siblings = f", nor {orphans} record{'' if orphans == 1 else 's'} of the other topics that cannot complete now"
    log.warning("records pending since an earlier batch were deleted from Kafka before their idx completed "
                "(retention, or delete-records): %s; no longer pending%s", "; ".join(deleted),
                siblings if orphans else "")
    return points


def _carried_keys(points: ResumePoints, topic: str) -> set[tuple[int, int]]:
    """(partition, idx) of the carried records of `topic` whose idx the batches recorded."""
    return {(partition, point.carried_idx[offset]) for (name, partition), point in points.items() if name == topic
            for offset in point.carried if offset in point.carried_idx}


def past_deleted(read_from: dict[TopicPartition, int], starts: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Where to read each partition from, given where its log starts now: records between were deleted before
    this group read them (retention outran the extractor), which is said, in one warning, not hidden."""
    gone = sorted(tp for tp, offset in read_from.items() if offset < starts[tp])
    if gone:
        log.warning("records were deleted from Kafka (retention, or delete-records) before this group read them: %s; "
                    "reading on from each log's start", "; ".join(f"{tp.topic}[{tp.partition}] offsets "
                                                              f"{read_from[tp]}..{starts[tp] - 1}" for tp in gone))
    return {tp: max(offset, starts[tp]) for tp, offset in read_from.items()}


def usable_committed(committed: dict[TopicPartition, int | None], ends: dict[TopicPartition, int],
                     ) -> dict[TopicPartition, int | None]:
    """The group's committed offsets, less those beyond their log's end (None, as if never committed): the group
    committed them on another log by the same name. Followed, the consumer would be reset to the log's start and
    the extractor skip every record below them as already written."""
    beyond = sorted(tp for tp, offset in committed.items() if offset is not None and tp in ends and offset > ends[tp])
    if beyond:
        log.warning("the group's committed offsets lie beyond the end of %s: committed on other logs of these names "
                    "(created again, or on another cluster); reading these partitions from their start",
                    ", ".join(f"{tp.topic}[{tp.partition}] ({committed[tp]} > {ends[tp]})" for tp in beyond))
    return {tp: None if tp in beyond else offset for tp, offset in committed.items()}


class GroupJoinTimeout(KafkaTimeoutError):
    """The broker answers but the consumer group assigned no partitions in time."""

    def __init__(self, group_id: str, instance_id: str | None, waited_s: float, broker_reachable: bool,
                 bootstrap: str, answering: list[str] | None = None):
        self.broker_reachable = broker_reachable
        servers = [server.strip() for server in bootstrap.split(",")]
        if broker_reachable and answering is not None and len(servers) > 1 and len(answering) <= len(servers) // 2:
            text = (f"only {len(answering)} of the {len(servers)} Kafka servers listed answer "
                    f"({', '.join(answering)}), and consumer group '{group_id}' assigned this extractor no "
                    f"partitions within {waited_s:g} s: a cluster with fewer than a majority of its nodes running "
                    "has no controller quorum and serves no group. Start the others (a cluster of this project's: "
                    f"./start_kafka.sh --brokers {len(servers)}, which starts only the stopped nodes), or check "
                    "KAFKA_BOOTSTRAP_SERVERS")
        elif broker_reachable:
            member = f" (instance {instance_id})" if instance_id else ""
            text = (f"the broker at {bootstrap} answers, but consumer group '{group_id}' assigned this extractor"
                    f"{member} no partitions within {waited_s:g} s: the group is waiting for its other members to "
                    f"rejoin or to time out (a dead member is dropped {SESSION_TIMEOUT_S} s after its last "
                    "heartbeat, unless an extractor with its instance id takes its place). "
                    f"See who is in it with kafka-consumer-groups.sh --bootstrap-server {bootstrap} --describe "
                    f"--group {group_id} --members; start again in a moment, stop extractors of this group that "
                    "hold partitions without working, or use another --group-id")
        else:
            text = (f"cannot reach Kafka at {bootstrap}: no partitions assigned within {waited_s:g} s; is the broker "
                    "running (./start_kafka.sh) and KAFKA_BOOTSTRAP_SERVERS right?")
        self.text = text  # the sentence for the person at the terminal (str() adds the class name)
        super().__init__(text)


class MemberSlot:
    """The static member id of an extractor that was not given one: the lowest free slot N of its group in its
    batch directory on this host, held by an exclusive lock on `.members/<group>.<N>.lock` for the life of the
    process. The kernel drops the lock when the process dies, SIGKILL included, so a restart after a crash
    finds the same slot free and rejoins as the same member; extractors running side by side hold different
    slots, so none fences another. The id names the host, the batch directory (a hash) and the slot."""

    def __init__(self, group_id: str, batch_dir: Path):
        slots = batch_dir / SLOTS_DIR
        slots.mkdir(parents=True, exist_ok=True)
        host = socket.gethostname()
        where = hashlib.sha256(f"{host}:{batch_dir.resolve()}".encode()).hexdigest()[:8]
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", group_id)
        for n in itertools.count():
            lock: IO = open(slots / f"{stem}.{n}.lock", "a")  # noqa: SIM115  (held until release())
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another extractor of this group and directory holds it
                lock.close()
                continue
            self.number, self.instance_id, self._lock = n, f"extractor-{host}-{where}-{n}", lock
            return

    def release(self) -> None:
        self._lock.close()


def member_id_for(requested: str | None, group_id: str, batch_dir: Path) -> tuple[str | None, MemberSlot | None]:
    """The group.instance.id to join with: the one asked for, none for 'dynamic', else a slot's."""
    if requested == DYNAMIC:
        return None, None
    if requested:
        return requested, None
    slot = MemberSlot(group_id, batch_dir)
    return slot.instance_id, slot


@dataclass(frozen=True)
class Polled:
    records: dict[TopicPartition, list]
    revoked: bool  # partitions were revoked since the last poll
    positioned: bool  # newly assigned partitions were positioned


class GroupMember(ConsumerRebalanceListener):
    """One member of the extractor group: `poll()` hands out records only of partitions the ledger has
    positioned, and says when partitions were revoked."""

    def __init__(self, settings: Settings, group_id: str, requested_id: str | None, batch_dir: Path, ledger: Ledger):
        self.instance_id, self._slot = member_id_for(requested_id, group_id, batch_dir)
        self.settings, self.group_id = settings, group_id
        self.batch_dir, self.ledger = batch_dir, ledger
        self.joining = True  # until the group assigns partitions (again, after a revocation)
        self._to_position: set[TopicPartition] = set()
        self._empty_since: float | None = None  # when the group last assigned this member nothing
        self._empty_retries = 0
        self._revoked = threading.Event()
        self._ends: dict[TopicPartition, int] = {}  # where each assigned partition's log ended when assigned
        try:
            self.consumer = self._consumer()
        except BaseException:
            if self._slot is not None:
                self._slot.release()  # the slot is free for the next try at once, not when this object is collected
            raise
        self.consumer.subscribe(list(settings.kind_by_topic), listener=self)
        # The topics' metadata before the first poll joins the group: kafka-python refreshes it before a join
        # only for a pattern subscription, and a leader that does not know the topics yet assigns nothing (the
        # group then waits EMPTY_ASSIGNMENT_RETRY_S to rejoin: 6 s in 2 of 5 warm pipeline runs here).
        for topic in settings.kind_by_topic:
            self.consumer.partitions_for_topic(topic)

    def _consumer(self) -> KafkaConsumer:
        settings = self.settings
        return KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=self.group_id,
            group_instance_id=self.instance_id,  # None: a dynamic member (see SESSION_TIMEOUT_S)
            client_id=f"batch-extractor-{self.group_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            # Range assignment gives one consumer the same partition numbers of all three topics,
            # so every idx (keyed, hence co-partitioned) is aligned by a single process.
            partition_assignment_strategy=[RangePartitionAssignor],
            max_poll_records=5000,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )

    # The listener runs on the client's IO thread, concurrently with the loop, and must not block: it only
    # notes what happened; poll() acts on it from the loop's thread.
    def on_partitions_revoked(self, revoked) -> None:
        self._revoked.set()

    def on_partitions_assigned(self, assigned) -> None:
        self._to_position = set(assigned)
        if assigned:
            self._empty_since = None
            self.consumer.pause(*assigned)  # no record is used before the partition is positioned
        else:
            self._empty_since = time.monotonic()

    def revoking(self) -> bool:
        """A rebalance began: records in hand may belong to another member now."""
        return self._revoked.is_set()

    def poll(self) -> Polled:
        """Records of positioned partitions. After a revocation the ledger is empty: what was not written is
        dropped, and re-read by whoever owns those partitions next."""
        polled = self.consumer.poll(timeout_ms=200, max_records=5000)
        revoked = self._revoked.is_set()
        if revoked:
            self._revoked.clear()
            self.ledger.forget()
            self.joining = True
        if self._to_position:
            self._position()
            return Polled({}, revoked, True)  # anything polled before positioning is fetched again after the seek
        if self.joining and self._empty_since is not None:
            self._retry_empty_assignment()
        return Polled(polled, revoked, False)

    def _retry_empty_assignment(self) -> None:
        if (time.monotonic() - self._empty_since < EMPTY_ASSIGNMENT_RETRY_S
                or self._empty_retries >= EMPTY_ASSIGNMENT_RETRIES):
            return
        self._empty_since, self._empty_retries = None, self._empty_retries + 1
        try:
            known = self.consumer.topics()  # a blocking metadata request: the leader's cache is fresh after it
        except KafkaError as exc:
            known = set()
            log.debug("metadata request failed: %s", exc)
        missing = sorted(set(self.settings.kind_by_topic) - known)
        log.warning("consumer group %s assigned this extractor no partitions%s; asking to rejoin (%d of %d)",
                    self.group_id, f" (topics not found: {', '.join(missing)})" if missing else "",
                    self._empty_retries, EMPTY_ASSIGNMENT_RETRIES)
        coordinator = getattr(self.consumer, "_coordinator", None)  # kafka-python has no public rejoin call
        if coordinator is not None and hasattr(coordinator, "request_rejoin"):
            coordinator.request_rejoin()

    def _position(self) -> None:
        assigned, self._to_position = self._to_position, set()
        self.joining = False
        self._ends = self.consumer.end_offsets(list(assigned))  # read_committed: the last stable offsets
        beginnings = self.consumer.beginning_offsets(list(assigned))
        resume = resume_points_for(self.batch_dir, topic_ids(self.consumer, {tp.topic for tp in assigned}),
                                   self._ends, beginnings)
        committed_offsets = usable_committed({tp: self.consumer.committed(tp) for tp in assigned}, self._ends)
        read_from: dict[TopicPartition, int] = {}
        for tp in assigned:
            point = resume.get((tp.topic, tp.partition))
            committed = committed_offsets[tp]
            if point is not None and committed is not None and committed != point.commit_offset:
                log.warning("%s[%d]: committed offset %s disagrees with batch %s (resume at %d); following the "
                            "batch, which was written durably", tp.topic, tp.partition, committed, point.batch_id,
                            point.commit_offset)
            read_from[tp] = self.ledger.resume(tp, point, committed if committed is not None else beginnings[tp])
        for tp, offset in past_deleted(read_from, beginnings).items():
            self.consumer.seek(tp, offset)
        self.consumer.resume(*assigned)
        log.info("assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(assigned)) or "nothing")

    def topic_ids(self) -> dict[str, str]:
        """Kafka's id of each of the three topics' logs, as far as the client's metadata knows them."""
        return topic_ids(self.consumer, self.settings.kind_by_topic)

    def at_end(self) -> bool:
        """Every assigned partition is read up to where its log ended when it was assigned."""
        assigned = self.consumer.assignment()
        return bool(assigned) and all(tp in self._ends and self.consumer.position(tp) >= self._ends[tp]
                                      for tp in assigned)

    def commit(self, commits: dict, batch_id: str) -> None:
        """Commit after a batch is on disk; a failure is repaired from the manifest on the next start."""
        try:
            self.consumer.commit({TopicPartition(*tp): OffsetAndMetadata(offset, batch_id, -1)
                                  for tp, offset in commits.items()})
        except KafkaError as exc:
            log.warning("batch %s written but the offset commit failed (%s); the next start repairs it", batch_id, exc)

    def join_timeout(self, waited_s: float) -> GroupJoinTimeout:
        bootstrap = self.settings.kafka_bootstrap_servers
        up = answering(bootstrap)
        return GroupJoinTimeout(self.group_id, self.instance_id, waited_s, bool(up), bootstrap, up)

    def close(self) -> None:
        """Close the consumer. A static member does not leave its group on close (that is what lets a restart
        after a crash take its place at once), so a process that gets here, alive, removes itself: other
        members of the group take its partitions now rather than after the session timeout."""
        try:
            self.consumer.close(autocommit=False)
            if self.instance_id:
                self._leave()
        finally:
            if self._slot is not None:
                self._slot.release()

    def _leave(self) -> None:
        bootstrap = self.settings.kafka_bootstrap_servers
        if not reachable(bootstrap, timeout_s=1.0):  # no broker to tell: do not wait out the client's timeouts
            return self._could_not_leave(f"no broker reachable at {bootstrap}")
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=f"batch-extractor-{self.group_id}",
                                     request_timeout_ms=5000, bootstrap_timeout_ms=5000)
        except KafkaError as exc:
            return self._could_not_leave(exc)
        try:
            result = admin.remove_group_members(self.group_id, [MemberToRemove(group_instance_id=self.instance_id)])
            log.debug("left consumer group %s as %s: %s", self.group_id, self.instance_id, result)
        except KafkaError as exc:
            self._could_not_leave(exc)
        finally:
            admin.close()

    def _could_not_leave(self, why: object) -> None:
        log.info("could not leave consumer group %s (%s); its partitions move after %d s", self.group_id, why,
                 SESSION_TIMEOUT_S)
