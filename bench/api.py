"""API benchmarks: batched ingest through a real uvicorn, and rankings at a million users.

1. Ingest: POST batches of 1000 glucose readings over HTTP (httpx, a few concurrent clients) to the API served by
   uvicorn in its own process; 202 means Kafka acknowledged every reading. Baseline, same run: the project's
   EventProducer sending the same number of readings straight to Kafka (no HTTP, validation or idempotency
   bookkeeping).
2. Rankings: 1,000,000 synthetic users COPYed into user_metrics_current (values with ties, 5 % without enough
   data). Timed: GET /v1/me/rankings/time_in_range over HTTP (p50/p99), the in-process snapshot lookup, the
   snapshot (re)load; baseline, same run: the exact SQL percent_rank() query for one user (p50/p99), and an
   exact count query using the (metric, sufficient, value) index.

Everything runs in a private database (created, migrated, dropped) on the configured PostgreSQL server, and the
readings go to the real topics (a bench user of its own) or to a private topic (baseline, deleted afterwards).

Run (as a module: a script named api.py would shadow the api package):
    vitalstream stack up kafka postgres && .venv/bin/python -m bench.api [--batches 60 --users 1000000]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import psycopg
from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import create_engine, text

from api.feed_listener import libpq_url
from bench.machine import machine
from producers.client import EventProducer
from producers.config import ProducerConfig
from schemas.events import GlucoseKind, GlucoseReading, Source
from schemas.topics import READINGS, TOPICS
from schemas.units import GlucoseUnit
from storage.migrate import scratch_database
from storage.rankings import Better, Distributions
from vitalstream.config import get_settings
from vitalstream.kafka_admin import admin_client, create_topics

BATCH = 1000
METRIC = "time_in_range_14d_pct"
PASSWORD = "bench password, not a secret"
console = Console(width=110)


def percentiles_ms(samples_s: list[float]) -> str:
    ms = np.array(samples_s) * 1000
    return f"p50 {np.percentile(ms, 50):8.3f} ms   p99 {np.percentile(ms, 99):8.3f} ms   (n={len(ms)})"


@contextmanager
def uvicorn_server(database_url: str, kafka: str, port: int) -> Iterator[str]:
    """The API in a uvicorn process of its own (so the client does not share its interpreter)."""
    env = os.environ | {"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka,
                        "VITALSTREAM_JWT_SECRET": uuid.uuid4().hex * 2, "VITALSTREAM_RATE_LIMIT_PER_S": "1000000",
                        "VITALSTREAM_RATE_LIMIT_BURST": "1000000", "VITALSTREAM_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host",
                                "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
                               env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def sign_up(base: str) -> tuple[str, dict[str, str]]:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.org"
    user_id = httpx.post(f"{base}/v1/auth/register", json={"email": email, "password": PASSWORD}).json()["id"]
    token = httpx.post(f"{base}/v1/auth/token", data={"username": email, "password": PASSWORD}).json()["access_token"]
    return user_id, {"Authorization": f"Bearer {token}"}


def glucose_batches(batches: int) -> list[list[dict[str, Any]]]:
    start = datetime.now(UTC) - timedelta(days=30)
    return [[{"occurred_at": (start + timedelta(seconds=5 * (b * BATCH + i))).isoformat(), "unit": "mg/dL",
              "value": 80 + (b * BATCH + i) % 150, "kind": "cgm"} for i in range(BATCH)] for b in range(batches)]


def bench_ingest(base: str, headers: dict[str, str], batches: list[list[dict[str, Any]]],
                 concurrency: int) -> float:
    """Readings per second over HTTP; every batch must be answered 202."""
    def post(batch: list[dict[str, Any]], client: httpx.Client) -> None:
        response = client.post("/v1/readings/glucose", json=batch, headers=headers)
        if response.status_code != 202:
            raise RuntimeError(f"ingest answered {response.status_code}: {response.text[:300]}")

    clients = [httpx.Client(base_url=base, timeout=60) for _ in range(concurrency)]
    post(batches[0], clients[0])  # warm-up: connections, the producer, the first Kafka metadata
    work = batches[1:]
    with Progress(console=console, transient=True) as progress, ThreadPoolExecutor(concurrency) as pool:
        task = progress.add_task("ingest over HTTP", total=len(work))
        started = time.perf_counter()
        futures = [pool.submit(post, batch, clients[i % concurrency]) for i, batch in enumerate(work)]
        for future in futures:
            future.result()
            progress.advance(task)
        elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    return len(work) * BATCH / elapsed


def bench_producer(kafka: str, batches: list[list[dict[str, Any]]], user_id: str) -> float:
    """Baseline: the same readings sent by the project's producer straight to a private topic."""
    now = datetime.now(UTC)
    events = [GlucoseReading(user_id=user_id, device_id="bench", source=Source.APP,
                             occurred_at=datetime.fromisoformat(r["occurred_at"]), received_at=now,
                             unit=GlucoseUnit.MG_DL, value=float(r["value"]), kind=GlucoseKind.CGM)
              for batch in batches[1:] for r in batch]
    topic = replace(READINGS, name=f"bench-api-{uuid.uuid4().hex[:8]}")
    admin = AdminClient({"bootstrap.servers": kafka})
    admin.create_topics([NewTopic(topic.name, num_partitions=READINGS.partitions, replication_factor=1)])[
        topic.name].result(timeout=30)
    try:
        started = time.perf_counter()
        with EventProducer(ProducerConfig(bootstrap_servers=kafka)) as producer:
            for event in events:
                producer.send(topic, event)
        elapsed = time.perf_counter() - started
    finally:
        admin.delete_topics([topic.name], operation_timeout=30)[topic.name].result(timeout=60)
    return len(events) / elapsed


def load_population(database_url: str, users: int, own_user: str) -> None:
    """`users` synthetic users by COPY: TIR ~ N(62, 18) % to one decimal (ties), 5 % insufficient."""
    rng = np.random.default_rng(5)
    values = np.clip(np.round(rng.normal(62, 18, users), 1), 0, 100)
    sufficient = rng.random(users) >= 0.05
    as_of = datetime.now(UTC).isoformat()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"COPY {users:,} users", total=users)
        statement = "COPY user_metrics_current (user_id, metric, value, sufficient, as_of) FROM STDIN"
        with psycopg.connect(libpq_url(database_url)) as connection, connection.cursor() as cursor:
            with cursor.copy(statement) as copy:
                chunk = 100_000
                for start in range(0, users, chunk):
                    buffer = io.StringIO()
                    for i in range(start, min(users, start + chunk)):
                        flag = "t" if sufficient[i] else "f"
                        buffer.write(f"synthetic-{i}\t{METRIC}\t{values[i]}\t{flag}\t{as_of}\n")
                    copy.write(buffer.getvalue())
                    progress.advance(task, min(chunk, users - start))
                copy.write(f"{own_user}\t{METRIC}\t71.3\tt\t{as_of}\n")
            cursor.execute("ANALYZE user_metrics_current")
            connection.commit()


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60, help="batches of 1000 readings to POST")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--users", type=int, default=1_000_000, help="synthetic users for the rankings")
    parser.add_argument("--requests", type=int, default=1000, help="rankings requests over HTTP")
    parser.add_argument("--sql-repeats", type=int, default=30, help="runs of each exact SQL query")
    parser.add_argument("--port", type=int, default=38181)
    args = parser.parse_args()

    settings = get_settings()
    create_topics(admin_client(settings.kafka), TOPICS.values())
    results: list[tuple[str, str]] = []
    with scratch_database(settings.database, "vitalstream_bench") as database_url, \
            uvicorn_server(database_url, settings.kafka, args.port) as base:
        user_id, headers = sign_up(base)
        batches = glucose_batches(args.batches + 1)
        http_rate = bench_ingest(base, headers, batches, args.concurrency)
        producer_rate = bench_producer(settings.kafka, batches, user_id)
        results += [("ingest over HTTP (batches of 1000, 202 = acked by Kafka)", f"{http_rate:>10,.0f} readings/s"),
                    ("baseline: EventProducer straight to Kafka", f"{producer_rate:>10,.0f} readings/s"),
                    ("ratio HTTP / producer", f"{http_rate / producer_rate:.2f}")]

        load_population(database_url, args.users, user_id)
        engine = create_engine(database_url)
        distributions = Distributions(engine)
        load_s = timed(lambda: distributions.refresh(METRIC), 5)
        snapshot = distributions.get(METRIC)
        lookups = timed(lambda: snapshot.rank(71.3, Better.HIGHER), 10_000)
        with httpx.Client(base_url=base, headers=headers) as client:
            client.get("/v1/me/rankings/time_in_range")  # the server loads its snapshot on first use
            http = timed(lambda: client.get("/v1/me/rankings/time_in_range").raise_for_status(), args.requests)
            api_percentile = client.get("/v1/me/rankings/time_in_range").json()["percentile"]
        exact = text("SELECT pct FROM (SELECT user_id, 100 * percent_rank() OVER (ORDER BY value) AS pct "
                     "FROM user_metrics_current WHERE metric = :m AND sufficient) ranked WHERE user_id = :u")
        counted = text("SELECT 100.0 * (SELECT count(*) FROM user_metrics_current WHERE metric = :m AND sufficient "
                       "AND value < :v) / ((SELECT count(*) FROM user_metrics_current WHERE metric = :m "
                       "AND sufficient) - 1)")
        with engine.connect() as connection:
            sql_percentile = connection.execute(exact, {"m": METRIC, "u": user_id}).scalar_one()
            sql = timed(lambda: connection.execute(exact, {"m": METRIC, "u": user_id}).scalar_one(), args.sql_repeats)
            count = timed(lambda: connection.execute(counted, {"m": METRIC, "v": 71.3}).scalar_one(),
                          args.sql_repeats)
        engine.dispose()
        results += [
            (f"rankings over HTTP ({len(snapshot.values):,} ranked users)", percentiles_ms(http)),
            ("  in-process snapshot lookup (2 binary searches)", percentiles_ms(lookups)),
            ("  snapshot load (one packed query + sort), every 60 s", percentiles_ms(load_s)),
            ("baseline: exact SQL percent_rank() for one user", percentiles_ms(sql)),
            ("baseline: exact SQL count via the index", percentiles_ms(count)),
            ("percentile: API vs SQL percent_rank", f"{api_percentile:.4f} vs {sql_percentile:.4f}"),
        ]

    table = Table(title=f"bench/api.py — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    table.add_column("measure")
    table.add_column("result", justify="right")
    for name, value in results:
        table.add_row(name, value)
    console.print(f"machine: {machine()}")
    console.print(table)


if __name__ == "__main__":
    main()
