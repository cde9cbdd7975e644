"""The user-posting emulator: random source rows, posted over HTTP to POST /events until told to stop."""
from __future__ import annotations

import asyncio
import json
import logging
import math
import multiprocessing as mp
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import psycopg
from psycopg import sql

from pinpipe.common.records import encode_value_field
from pinpipe.common.schema import FIELDS, KINDS, TABLES

log = logging.getLogger(__name__)

STATES = ("starting", "running", "stopping", "finished", "failed")
RETRYABLE_STATUS = {429, 502, 503, 504}
DB_CONNECTIONS = 4
# At a set rate, enough posters to keep it while each request takes up to this long (a request waits for its
# Kafka transaction: ~5 ms on one local broker, ~30 ms on the local three-broker cluster, more on a remote one).
LATENCY_ALLOWANCE_S = 1.0


class EmulatorStatus:
    """Counters shared between the emulator process and the API process (GET /stats)."""

    def __init__(self, ctx=mp) -> None:
        self._state = ctx.Value("i", 0)
        self._acked = ctx.Value("q", 0)
        self._retries = ctx.Value("q", 0)
        self._started = ctx.Value("d", 0.0)
        self._rate_target = ctx.Value("d", 0.0)

    def set_state(self, state: str) -> None:
        self._state.value = STATES.index(state)

    @property
    def state(self) -> str:
        return STATES[self._state.value]

    @property
    def acked(self) -> int:
        return self._acked.value

    def snapshot(self) -> dict[str, Any]:
        elapsed = time.time() - self._started.value if self._started.value else 0.0
        return {
            "state": self.state,
            "triplets_acknowledged": self._acked.value,
            "retries": self._retries.value,
            "rate_target_per_s": self._rate_target.value or "max",
            "rate_actual_per_s": round(self._acked.value / elapsed, 1) if elapsed > 0 else 0.0,
        }


@dataclass
class EmulatorConfig:
    database_url: str
    api_url: str
    rate: float = 20.0  # triplets per second; 0 = as fast as possible
    count: int | None = None  # stop after this many acknowledged triplets
    random_seed: int | None = None
    concurrency: int = 128  # requests in flight: always this many at rate 0, at most this many at a rate
    max_backoff_s: float = 5.0
    stop_grace_s: float = 30.0  # once stopped, how long in-flight triplets may keep retrying
    give_up_after_s: float = 0.0  # fail when nothing was acknowledged for this long while posts wait; 0: never


class Stalled(RuntimeError):
    """No triplet was acknowledged for EmulatorConfig.give_up_after_s while some were waiting (a broker down)."""


def posters_for(rate: float, concurrency: int) -> int:
    """Requests in flight for `rate` triplets/s: rate x LATENCY_ALLOWANCE_S and two spare, at most `concurrency`.
    Idle posters cost nothing (the paced readers feed them); too few cap the rate at posters / latency."""
    return max(1, min(concurrency, math.ceil(rate * LATENCY_ALLOWANCE_S) + 2))


def triplet_query() -> sql.Composed:
    """One parameterised query for the three rows of an idx."""
    alias = {"pin": "p", "geo": "g", "user": "u"}
    columns = sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.Identifier(alias[k]), sql.Identifier(c))
                                 for k in KINDS for c in FIELDS[k])
    return sql.SQL("SELECT {} FROM {} p JOIN {} g ON g.idx = p.idx JOIN {} u ON u.idx = p.idx WHERE p.idx = %s").format(
        columns, *(sql.Identifier(TABLES[k]) for k in KINDS))


def keys_query() -> sql.Composed:
    """The idx present in all three tables: the emulator draws uniformly from these."""
    return sql.SQL(
        "SELECT p.idx FROM {} p JOIN {} g ON g.idx = p.idx JOIN {} u ON u.idx = p.idx ORDER BY p.idx").format(
        *(sql.Identifier(TABLES[k]) for k in KINDS))


def answer_detail(text: str, limit: int = 300) -> str:
    """What an error answer's JSON body says (its `detail`, as the poster's 503 says why Kafka did not take the
    records), else its text; '' when empty."""
    try:
        detail = json.loads(text).get("detail", text)
    except (ValueError, AttributeError):
        detail = text
    return " ".join(str(detail).split())[:limit]


def event_body(row: tuple) -> dict[str, dict[str, Any]]:
    """Split a triplet_query row into the /events body, with the records' explicit encodings."""
    body, i = {}, 0
    for kind in KINDS:
        names = FIELDS[kind]
        body[kind] = {name: encode_value_field(value) for name, value in zip(names, row[i:i + len(names)])}
        i += len(names)
    return body


class Emulator:
    def __init__(self, config: EmulatorConfig, status: EmulatorStatus, stop: asyncio.Event):
        self.config = config
        self.status = status
        self.stop = stop
        self.rng = random.Random(config.random_seed)
        self.issued = 0
        self.last_ack = time.monotonic()  # or the start: what give_up_after_s counts from
        self.last_failure = ""

    async def run(self) -> int:
        """Post triplets until stopped or `count` are acknowledged; returns how many were."""
        cfg = self.config
        async with await psycopg.AsyncConnection.connect(cfg.database_url, autocommit=True) as conn:
            keys = [row[0] for row in await (await conn.execute(keys_query())).fetchall()]
        if not keys:
            raise RuntimeError("the source tables hold no complete rows to post; run `python data_poster.py seed-db`")
        log.info("emulating user posts: %d idx to draw from, rate %s/s%s", len(keys), cfg.rate or "max",
                 f", stopping after {cfg.count}" if cfg.count else "")
        self.status._started.value = time.time()
        self.status._rate_target.value = cfg.rate
        self.status.set_state("running")
        started = time.monotonic()
        posters = cfg.concurrency if cfg.rate == 0 else posters_for(cfg.rate, cfg.concurrency)
        # A few database readers feed many HTTP posters: PostgreSQL allows ~100 connections in all.
        readers = min(DB_CONNECTIONS, posters)
        bodies: asyncio.Queue = asyncio.Queue(maxsize=posters * 2)
        # aiohttp rather than httpx: httpx's connection pool caps one client's request rate far below the API's.
        connector = aiohttp.TCPConnector(limit=posters)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(cfg.api_url, connector=connector, timeout=timeout) as client:
            posting = [asyncio.create_task(self._poster(client, bodies)) for _ in range(posters)]
            reading = [asyncio.create_task(self._reader(keys, started, bodies)) for _ in range(readers)]

            async def drain() -> None:  # readers run out of tickets, then the posters empty the queue
                await asyncio.gather(*reading)
                for _ in posting:
                    await bodies.put(None)
                await asyncio.gather(*posting)

            draining = asyncio.create_task(drain())
            stopped = asyncio.create_task(self.stop.wait())
            watchdog = asyncio.create_task(self._watch_acknowledgements())
            await asyncio.wait({draining, stopped, watchdog}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if watchdog.done() and not watchdog.cancelled() and watchdog.exception() is not None:
                for task in (*reading, *posting, draining):
                    task.cancel()
                await asyncio.gather(*reading, *posting, draining, return_exceptions=True)
                raise watchdog.exception()
            watchdog.cancel()
            if not draining.done():
                # Stopped: in-flight triplets may retry for a while, not forever (a broker or the API may be down,
                # and then the readers wait for room in the queue too).
                done, _ = await asyncio.wait({draining}, timeout=cfg.stop_grace_s)
                if not done:
                    for task in (*reading, *posting, draining):
                        task.cancel()
                    await asyncio.gather(*reading, *posting, draining, return_exceptions=True)
                    log.warning("stopping: %d triplets still unacknowledged after %g s of retries were given up "
                                "(never acknowledged, so not counted; the poster answered them 503 or not at all)",
                                self.issued - self.status.acked, cfg.stop_grace_s)
            if draining.done() and not draining.cancelled() and draining.exception() is not None:
                for task in (*reading, *posting):  # one failed (a non-retryable answer): the rest stop too
                    task.cancel()
                await asyncio.gather(*reading, *posting, return_exceptions=True)
                raise draining.exception()
        return self.status.acked

    async def _watch_acknowledgements(self) -> None:
        """Raise Stalled once nothing was acknowledged for give_up_after_s while posts wait; else run until
        cancelled."""
        limit = self.config.give_up_after_s
        if limit <= 0:
            await asyncio.Event().wait()
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            waiting = self.issued - self.status.acked
            if waiting and time.monotonic() - self.last_ack > limit:
                answer = f"the last answer: {self.last_failure}" if self.last_failure else "no answer yet"
                raise Stalled(f"no triplet acknowledged for {limit:g} s ({waiting} waiting, {answer}). Is Kafka "
                              "running (a cluster: a majority of its nodes)? The poster answers 503 while Kafka does "
                              "not take its records")

    def _next_ticket(self) -> int | None:
        if self.stop.is_set() or (self.config.count is not None and self.issued >= self.config.count):
            return None
        self.issued += 1
        return self.issued

    async def _reader(self, keys: list[int], started: float, bodies: asyncio.Queue) -> None:
        cfg = self.config
        async with await psycopg.AsyncConnection.connect(cfg.database_url, autocommit=True) as conn:
            query = triplet_query()
            while (ticket := self._next_ticket()) is not None:
                if cfg.rate > 0:  # pace tickets on a fixed schedule, not a fixed sleep per request
                    delay = started + ticket / cfg.rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                idx = self.rng.choice(keys)
                row = await (await conn.execute(query, (idx,))).fetchone()
                if row is None:
                    log.warning("idx %d disappeared from the source tables; drawing another", idx)
                    self.issued -= 1
                    continue
                await bodies.put(event_body(row))

    async def _poster(self, client: aiohttp.ClientSession, bodies: asyncio.Queue) -> None:
        while (body := await bodies.get()) is not None:
            await self._post(client, body)

    async def _post(self, client: aiohttp.ClientSession, body: dict) -> None:
        """POST until acknowledged: retry transient failures with capped exponential backoff."""
        backoff = 0.1
        while True:
            try:
                async with client.post("/events", json=body) as response:
                    status, text = response.status, await response.text()
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                reason = self.last_failure = f"{type(exc).__name__}"
            else:
                if status == 200:
                    with self.status._acked.get_lock():
                        self.status._acked.value += 1
                    self.last_ack = time.monotonic()
                    return
                if status not in RETRYABLE_STATUS:
                    raise RuntimeError(f"POST /events answered {status}: {text[:300]}")
                reason = f"HTTP {status}"
                self.last_failure = f"{reason}: {detail}" if (detail := answer_detail(text)) else reason
            with self.status._retries.get_lock():
                self.status._retries.value += 1
            log.warning("idx %s not acknowledged (%s); retrying in %.1f s", body["pin"]["idx"], reason, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.config.max_backoff_s)


def run_emulator_process(config: EmulatorConfig, status: EmulatorStatus, stop_flag) -> None:
    """Entry point of the emulator's own process (so it does not compete with the API for one core)."""
    from pinpipe.common.logs import setup_logging

    setup_logging()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        parent = os.getppid()

        async def watch_flag():
            while not stop.is_set():
                if stop_flag.is_set() or os.getppid() != parent:  # told to stop, or the API process died
                    stop.set()
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch_flag())
        try:
            started = time.perf_counter()
            acked = await Emulator(config, status, stop).run()
            elapsed = time.perf_counter() - started
            status.set_state("finished")
            log.info("emulator finished: %d triplets acknowledged in %.1f s (%.0f/s)", acked, elapsed,
                     acked / elapsed if elapsed else 0.0)
        except Exception as exc:
            status.set_state("failed")
            print(f"error: the emulator failed: {exc}", file=sys.stderr, flush=True)  # what run_pipeline.sh shows
            raise SystemExit(1) from exc
        finally:
            watcher.cancel()

    asyncio.run(main())
