"""The produce API against its limits, in one run: raw producer, /topics, /send_data vs no-op, /events, emulator.

Needs a broker on KAFKA_BOOTSTRAP_SERVERS (./start_kafka.sh) and uses the embedded PostgreSQL for (e).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from common import fresh_topics
from kafka import KafkaProducer

from pinpipe.common.config import PROJECT_ROOT, get_settings
from pinpipe.common.records import encode_key, encode_value, encode_value_field, row_dict
from pinpipe.common.schema import KINDS
from pinpipe.source import datagen

NOOP_APP = '''
from fastapi import FastAPI
app = FastAPI()
@app.post("/noop")
async def noop(value: dict):
    return {"status": "ok"}
'''


def wait_http(url: str, timeout: float = 60) -> None:
    import urllib.request
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


async def hammer(base: str, requests, concurrency: int) -> float:
    """Send (method, path, params, json) requests with `concurrency` in flight; returns requests/s."""
    queue = list(reversed(requests))
    async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker():
            while queue:
                path, params, body = queue.pop()
                async with session.post(path, params=params, json=body) as response:
                    if response.status != 200:
                        raise RuntimeError(f"{path} answered {response.status}: {await response.text()}")
                    await response.read()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(requests) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    settings = get_settings()
    bootstrap = settings.kafka_bootstrap_servers
    topics = fresh_topics(bootstrap, "bench")
    suffix = topics["pin"].split(".")[0]
    rows = [{k: row_dict(k, r) for k, r in zip(KINDS, t)} for t in datagen.iter_rows(args.records, seed=1)]
    json_rows = [{k: {n: encode_value_field(v) for n, v in r[k].items()} for k in KINDS} for r in rows]

    # (a) the limit: kafka-python producing the same pin records, acks=all, idempotent.
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2,
                             batch_size=256 * 1024)
    started = time.perf_counter()
    futures = [producer.send(topics["pin"], key=encode_key(r["pin"]["idx"]), value=encode_value("pin", r["pin"])) for r in rows]
    producer.flush()
    for f in futures:
        f.get()
    raw_rate = len(rows) / (time.perf_counter() - started)
    producer.close()

    port, noop_port = 18_700, 18_701
    env = {**os.environ, "PIN_TOPIC": topics["pin"], "GEO_TOPIC": topics["geo"], "USER_TOPIC": topics["user"],
           "POSTER_PORT": str(port), "TRANSACTIONAL_ID": f"bench-{suffix}", "MAX_RECORDS_PER_REQUEST": "1000"}
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "noop_app.py").write_text(NOOP_APP)
        noop = subprocess.Popen([sys.executable, "-m", "uvicorn", "--app-dir", tmp, "noop_app:app", "--port",
                                 str(noop_port), "--log-level", "warning", "--no-access-log"])
        poster = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "--no-emulator"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{port}/docs")
            wait_http(f"http://127.0.0.1:{noop_port}/docs")
            base = f"http://127.0.0.1:{port}"
            # (b) /topics with 100-record batches
            batches = [(f"/topics/{topics['pin']}", None, {"records": [{"key": r["pin"]["idx"], "value": r["pin"]}
                                                                         for r in json_rows[i:i + 100]]})
                       for i in range(0, len(json_rows), 100)]
            topics_rate = asyncio.run(hammer(base, batches, 8)) * 100
            # (c) single records with concurrency, next to a no-op endpoint
            singles = [("/send_data", {"topic": topics["geo"]}, r["geo"]) for r in json_rows[:10_000]]
            single_rate = asyncio.run(hammer(base, singles, args.concurrency))
            noop_rate = asyncio.run(hammer(f"http://127.0.0.1:{noop_port}",
                                           [("/noop", None, r["geo"]) for r in json_rows[:10_000]], args.concurrency))
            # (d) /events with concurrency
            events = [("/events", None, r) for r in json_rows[:10_000]]
            events_rate = asyncio.run(hammer(base, events, args.concurrency * 2))
        finally:
            poster.terminate()
            noop.terminate()
            poster.wait()
            noop.wait()
    # (e) the emulator as fast as it goes, against the embedded database
    emulator = subprocess.run([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "--count", "10000", "--rate", "0",
                               "--concurrency", str(args.concurrency * 4)],
                              env={**env, "TRANSACTIONAL_ID": f"bench-e-{suffix}"}, capture_output=True, text=True)
    match = re.search(r"acknowledged in [\d.]+ s \((\d+)/s\)", emulator.stderr)
    emulator_rate = float(match.group(1)) if match else float("nan")

    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    print(f"(a) raw kafka-python producer, acks=all         {raw_rate:>9,.0f} records/s   (the limit)")
    print(f"(b) POST /topics, 100-record batches             {topics_rate:>9,.0f} records/s   {topics_rate / raw_rate:.2f}x (a), goal >= 0.5x")
    print(f"(c) POST /send_data, {args.concurrency} in flight              {single_rate:>9,.0f} requests/s  {single_rate / noop_rate:.2f}x no-op, goal >= 0.3x")
    print(f"    no-op FastAPI endpoint, same client          {noop_rate:>9,.0f} requests/s")
    print(f"(d) POST /events, {args.concurrency * 2} in flight                 {events_rate:>9,.0f} triplets/s  goal >= 1,000")
    print(f"(e) emulator --rate 0 (PostgreSQL -> HTTP)       {emulator_rate:>9,.0f} triplets/s  goal >= 1,000")


if __name__ == "__main__":
    main()
