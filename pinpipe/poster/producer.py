"""Kafka producers for the poster: acknowledged single records, and atomic triplets in shared transactions.

Both are created lazily on a worker thread, so the API starts (and reports itself not ready) while the
broker is down, and no blocking Kafka call ever runs on the event loop.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from pinpipe.common.brokers import reachable
from pinpipe.common.config import Settings

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge in time or refused; the caller should retry later."""


@dataclass(frozen=True)
class Delivered:
    topic: str
    partition: int
    offset: int


RETRY_BACKOFF_MS = 20  # the Java client's own backoff for a transaction's first AddPartitions


def _producer_config(settings: Settings) -> dict[str, Any]:
    timeout_ms = int(settings.delivery_timeout_s * 1000)
    return dict(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        # Concurrent requests share broker round trips: a few ms of linger fills batches, so the poster spends
        # less CPU per single-record request, and is small next to a request's latency under load.
        linger_ms=8,
        batch_size=256 * 1024,
        # kafka-python's sender waits this long between a transaction's steps (adding partitions on other
        # leaders, retrying a CONCURRENT_TRANSACTIONS answer while the last commit completes) and before any
        # retry; its 100 ms default made a transaction on the three-broker cluster take ~210 ms, not ~50.
        retry_backoff_ms=RETRY_BACKOFF_MS,
        # Each bound below the API's own deadline, so a dead broker surfaces as an error, not a hang.
        delivery_timeout_ms=timeout_ms,
        request_timeout_ms=max(1000, timeout_ms // 2),
        max_block_ms=max(1000, timeout_ms // 2),
        bootstrap_timeout_ms=max(1000, timeout_ms // 2),
    )


async def _within(seconds: float, awaitable):
    """Await with a deadline; asyncio.timeout (3.11+) avoids the extra task wait_for creates per call."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


class _Deliveries:
    """Hands kafka-python delivery reports (made on its IO thread) to one event loop in bunches.

    A broker response settles a whole batch of records at once; waking the loop once for the bunch instead
    of once per record (call_soon_threadsafe each) saves a cross-thread wake-up and a GIL hand-off per record.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._lock = threading.Lock()
        self._reports: list[tuple[asyncio.Future, Any, bool]] = []
        self.unsettled = 0  # records handed to the producer whose delivery has not been reported yet

    def watch(self, kafka_future) -> asyncio.Future:
        """An asyncio future that completes when `kafka_future` does."""
        future = self.loop.create_future()
        with self._lock:
            self.unsettled += 1
        kafka_future.add_callback(self._report, future, False)
        kafka_future.add_errback(self._report, future, True)
        return future

    def _report(self, future: asyncio.Future, failed: bool, outcome) -> None:
        with self._lock:
            self.unsettled -= 1
            self._reports.append((future, outcome, failed))
            wake = len(self._reports) == 1  # the first report of a bunch schedules the drain
        if wake:
            self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            reports, self._reports = self._reports, []
        for future, outcome, failed in reports:
            if not future.done():  # its caller may have timed out and gone
                if failed:
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)


class RecordProducer:
    """Idempotent, acks=all producer; `produce` returns only once the broker has every record."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="produce")
        self._deliveries: _Deliveries | None = None  # bound to the loop of the first request

    def _get(self) -> KafkaProducer:
        producer = self._producer
        if producer is not None:
            return producer
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(**_producer_config(self.settings))
            return self._producer

    def _send_all(self, topic: str, items: list[tuple[bytes, bytes]], deliveries: _Deliveries) -> list:
        producer = self._get()
        return [deliveries.watch(producer.send(topic, key=key, value=value)) for key, value in items]

    async def produce(self, topic: str, items: list[tuple[bytes, bytes]]) -> list[Delivered]:
        deadline = self.settings.delivery_timeout_s
        try:
            metadata = await self._produce(topic, items, deadline)
        except (TimeoutError, asyncio.TimeoutError):
            raise BrokerUnavailable(f"the broker did not acknowledge within {deadline:g} s") from None
        except KafkaError as exc:
            raise BrokerUnavailable(f"the broker refused or is unreachable ({type(exc).__name__})") from None
        return [Delivered(md.topic, md.partition, md.offset) for md in metadata]

    async def _produce(self, topic: str, items: list[tuple[bytes, bytes]], deadline: float) -> list:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + deadline
        deliveries = self._deliveries
        if deliveries is None or deliveries.loop is not loop:
            deliveries = self._deliveries = _Deliveries(loop)
        if self._metadata_known(topic):
            # send() only blocks to fetch metadata (kafka-python 3 has no buffer-memory wait), so with the
            # topic's partitions known it is a quick append: no thread hop needed.
            sent = self._send_all(topic, items, deliveries)
        else:
            sent = await _within(deadline, loop.run_in_executor(self._executor, self._send_all, topic, items,
                                                                deliveries))
        delivered = sent[0] if len(sent) == 1 else asyncio.gather(*sent)
        # One timer on the delivery future is the deadline (cheaper per request than an asyncio.timeout scope).
        timer = loop.call_at(give_up_at, _expire, delivered)
        try:
            result = await delivered
        finally:
            timer.cancel()
        return [result] if len(sent) == 1 else result

    def _metadata_known(self, topic: str) -> bool:
        metadata = getattr(self._producer, "_metadata", None)  # private: any change falls back to the thread
        try:
            return bool(metadata is not None and metadata.partitions_for_topic(topic))
        except Exception:
            return False

    def ready(self) -> bool:
        """A bootstrap server accepts connections now, and the pin topic's metadata is known."""
        if not reachable(self.settings.kafka_bootstrap_servers, timeout_s=1.0):
            return False  # the client's metadata is cached, so it alone would not notice a dead broker
        try:
            return bool(self._get().partitions_for(self.settings.pin_topic))
        except KafkaError:
            return False

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            # Records accepted but not yet acknowledged get their last chance here (their callers got 503s).
            try:
                producer.flush(timeout=self.settings.delivery_timeout_s)
            except KafkaError as exc:
                log.warning("flush at shutdown failed: %s", exc)
            unsettled = self._deliveries.unsettled if self._deliveries else 0
            if unsettled:
                log.warning("%d records were not delivered before shutdown (their requests were answered 503)",
                            unsettled)
            producer.close(timeout=1)


@dataclass
class _Pending:
    records: list[tuple[str, bytes, bytes]]  # (topic, key, value)
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class TransactionalBatcher:
    """Produces groups of records atomically: each group is in exactly one committed transaction.

    Concurrent calls share transactions: the worker thread takes every group waiting in the queue (up to
    `max_groups`), sends them in one transaction and commits once, so throughput does not cost one broker
    round trip per group. If the commit fails, every group in it fails (and is aborted, never visible).
    """

    def __init__(self, settings: Settings, transactional_id: str, max_groups: int = 500):
        self.settings = settings
        self.transactional_id = transactional_id
        self.max_groups = max_groups
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._producer: KafkaProducer | None = None
        self._thread = threading.Thread(target=self._run, name="transactions", daemon=True)
        self._thread.start()
        self.transactions = 0

    async def produce(self, records: list[tuple[str, bytes, bytes]]) -> list[Delivered]:
        loop = asyncio.get_running_loop()
        pending = _Pending(records, loop.create_future(), loop)
        self._queue.put(pending)
        deadline = self.settings.delivery_timeout_s
        try:
            return await _within(deadline, asyncio.shield(pending.future))
        except (TimeoutError, asyncio.TimeoutError):
            # Nobody awaits the group any more: take its outcome when it comes, so a failure is not logged
            # as an exception never retrieved (the caller has answered 503 already).
            pending.future.add_done_callback(_outcome_taken)
            raise BrokerUnavailable(f"the transaction was not committed within {deadline:g} s") from None

    def _make_producer(self) -> KafkaProducer:
        producer = KafkaProducer(transactional_id=self.transactional_id,
                                 transaction_timeout_ms=60_000, **_producer_config(self.settings))
        producer.init_transactions()
        return producer

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            groups = [first]
            while len(groups) < self.max_groups:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                groups.append(item)
            groups = [g for g in groups if not g.future.done()]  # callers that gave up are not produced
            if groups:
                self._commit(groups)
        if self._producer is not None:
            self._producer.close(timeout=self.settings.delivery_timeout_s)

    def _commit(self, groups: list[_Pending]) -> None:
        try:
            if self._producer is None:
                self._producer = self._make_producer()
            producer = self._producer
            producer.begin_transaction()
            sent = [[producer.send(topic, key=key, value=value) for topic, key, value in g.records] for g in groups]
            # Every record delivered before the commit, or no commit: kafka-python can commit a transaction one
            # of whose batches expired during a leader fail-over, which would make a partial triplet visible.
            producer.flush(timeout=self.settings.delivery_timeout_s)
            undelivered = [f for futures in sent for f in futures if not (f.is_done and f.succeeded())]
            if undelivered:
                failed = next((f for f in undelivered if f.is_done), None)
                raise failed.exception if failed is not None else KafkaTimeoutError(
                    f"{len(undelivered)} records not delivered within {self.settings.delivery_timeout_s:g} s")
            end_transaction(producer, commit=True, timeout_s=self.settings.delivery_timeout_s)
            self.transactions += 1
            results = [[Delivered(md.topic, md.partition, md.offset) for md in (f.get(timeout=0) for f in futures)]
                       for futures in sent]
        except Exception as exc:  # every group in the transaction fails together
            log.warning("transaction of %d groups failed: %s", len(groups), exc)
            self._discard_producer()
            error = BrokerUnavailable(f"the transaction failed ({type(exc).__name__})")
            for g in groups:
                g.loop.call_soon_threadsafe(_set_exception, g.future, error)
            time.sleep(0.2)  # do not spin against a broker that is down
            return
        for g, result in zip(groups, results):
            g.loop.call_soon_threadsafe(_set_result, g.future, result)

    def _discard_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            end_transaction(producer, commit=False, timeout_s=2.0)
        except Exception:
            pass  # nothing committed; the next producer's init_transactions fences and aborts it
        try:
            producer.close(timeout=0)
        except Exception:
            pass

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=self.settings.delivery_timeout_s + 5)


def end_transaction(producer: KafkaProducer, *, commit: bool, timeout_s: float) -> None:
    """commit_transaction() or abort_transaction(), but bounded: kafka-python waits for the coordinator's answer
    without a timeout, and after a broker was killed that wait never ended, freezing the transaction thread
    (every later request answered 503 until shutdown)."""
    manager, sender = getattr(producer, "_transaction_manager", None), getattr(producer, "_sender", None)
    if manager is None or sender is None or not hasattr(manager, "begin_commit"):  # another kafka-python layout
        producer.commit_transaction() if commit else producer.abort_transaction()
        return
    result = manager.begin_commit() if commit else manager.begin_abort()
    sender.wakeup()
    if not result.wait(timeout_ms=int(timeout_s * 1000)):  # raises the coordinator's error, if it gave one
        raise KafkaTimeoutError(f"the transaction was not {'committed' if commit else 'aborted'} within "
                                f"{timeout_s:g} s (is the transaction coordinator's broker down?)")


def _outcome_taken(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def _set_result(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
