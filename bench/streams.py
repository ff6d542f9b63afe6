"""Stream worker throughput and latency against the real Kafka and TimescaleDB.

1. A backlog of synthetic events (CGM every 5 minutes, meals, blood pressure) is produced to private topics.
2. Baseline: a plain confluent-kafka consumer reads the same topics from the start (no decoding, no storage).
3. `vitalstream worker streams` (a subprocess, its own consumer group) works off the backlog into a fresh
   database; sustained rate = events / (last row stored - first row stored).
4. Light load: 20 people each send a CGM reading every 300 ms (staggered); latency = the reading's effect on
   the person's tier visible in storage (user_metrics_current.as_of) - send time of the reading.

Run:  .venv/bin/python -m bench.streams [--users 200 --events-per-user 500 --batch-size 5000 --light-users 20
                                         --light-interval-ms 300 --light-seconds 20]
Services come from Settings (KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL or the local stack). The topics,
consumer groups and database are private and removed afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
from sqlalchemy import create_engine, text

from bench.machine import machine
from producers.client import EventProducer
from producers.config import ProducerConfig
from schemas.events import BloodPressureReading, Event, GlucoseKind, GlucoseReading, MealLogged, Source
from schemas.topics import MEALS, READINGS, Topic
from schemas.units import GlucoseUnit
from stack.probes import free_port, scrape_metrics
from storage.migrate import scratch_database
from streams.app import WORKER_TOPICS, prefixed
from vitalstream.config import get_settings
from vitalstream.kafka_admin import admin_client, create_topics


def backlog(users: int, per_user: int, start: datetime, seed: int = 1) -> list[Event]:
    """Per user: CGM every 5 min, a meal every ~3 h, a BP reading every ~4 h; ordered by time."""
    rng = np.random.default_rng(seed)
    events: list[Event] = []
    for index in range(users):
        user = f"bench-{index:05d}"
        glucose = 140.0
        for step in range(per_user):
            at = start + timedelta(minutes=5 * step)
            glucose = float(np.clip(glucose + rng.normal(0, 6), 45, 380))
            if step % 36 == 5:
                events.append(MealLogged(user_id=user, device_id="app", source=Source.APP, occurred_at=at,
                                         received_at=at, meal_slot="snack", energy_kcal=float(rng.integers(100, 900)),
                                         carbs_g=float(rng.integers(10, 100))))
            elif step % 48 == 7:
                events.append(BloodPressureReading(user_id=user, device_id="cuff", source=Source.DEVICE,
                                                   occurred_at=at, received_at=at,
                                                   systolic_mmhg=int(rng.integers(105, 165)),
                                                   diastolic_mmhg=int(rng.integers(60, 99))))
            else:
                events.append(GlucoseReading(user_id=user, device_id="cgm", source=Source.DEVICE, occurred_at=at,
                                             received_at=at, unit=GlucoseUnit.MG_DL, value=round(glucose),
                                             kind=GlucoseKind.CGM))
    events.sort(key=lambda e: (e.occurred_at, e.user_id))
    return events


def topic_for(event: Event, prefix: str) -> Topic:
    return prefixed(MEALS if isinstance(event, MealLogged) else READINGS, prefix)


def raw_consume_rate(kafka: str, topics: list[str], expected: int) -> tuple[float, float]:
    """(messages/s from first to last message, seconds) of a plain consumer reading `topics` from the start."""
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": f"bench-raw-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(topics)
    count, first = 0, None
    deadline = time.monotonic() + 300
    while count < expected and time.monotonic() < deadline:
        for message in consumer.consume(10_000, timeout=1.0):
            if message.error() is None:
                first = first or time.perf_counter()
                count += 1
    last = time.perf_counter()
    consumer.close()
    if first is None or count < expected:
        raise RuntimeError(f"raw consumer read {count} of {expected} messages")
    return count / (last - first), last - first


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--events-per-user", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=None, help="VITALSTREAM_STREAMS_BATCH_SIZE for the worker")
    parser.add_argument("--light-users", type=int, default=20, help="light load: people sending readings")
    parser.add_argument("--light-interval-ms", type=int, default=300, help="light load: each person's interval")
    parser.add_argument("--light-seconds", type=float, default=20.0, help="light load: how long")
    parser.add_argument("--batch-wait-ms", type=int, default=None,
                        help="VITALSTREAM_STREAMS_BATCH_WAIT_MS for the worker")
    args = parser.parse_args()

    settings = get_settings()
    tag = uuid.uuid4().hex[:8]
    prefix, app_id = f"bench{tag}.", f"bench-streams-{tag}"
    cleanup = contextlib.ExitStack()
    database_url = cleanup.enter_context(scratch_database(settings.database, "bench_streams"))
    create_topics(admin_client(settings.kafka), [prefixed(t, prefix) for t in WORKER_TOPICS])
    work = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    worker: subprocess.Popen[bytes] | None = None
    try:
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5 * args.events_per_user)
        events = backlog(args.users, args.events_per_user, start)
        print(f"{machine()}; load average {os.getloadavg()[0]:.1f}\n"
              f"backlog: {len(events):,} events of {args.users} users", flush=True)
        config = ProducerConfig(bootstrap_servers=settings.kafka)
        with EventProducer(config) as producer:
            for event in events:
                producer.send(topic_for(event, prefix), event)
        names = [prefixed(READINGS, prefix).name, prefixed(MEALS, prefix).name]
        raw_rate, raw_s = raw_consume_rate(settings.kafka, names, len(events))
        print(f"raw consumer: {raw_rate:,.0f} messages/s ({raw_s:.1f} s)", flush=True)

        port = free_port()
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka, "DATABASE_URL": database_url,
               "VITALSTREAM_STREAMS_APP_ID": app_id, "VITALSTREAM_STREAMS_TOPIC_PREFIX": prefix}
        if args.batch_size:
            env["VITALSTREAM_STREAMS_BATCH_SIZE"] = str(args.batch_size)
        if args.batch_wait_ms:
            env["VITALSTREAM_STREAMS_BATCH_WAIT_MS"] = str(args.batch_wait_ms)
        log_path = work / "worker.log"
        with log_path.open("wb") as log:
            launched = time.perf_counter()
            worker = subprocess.Popen(
                [sys.executable, "-m", "vitalstream", "worker", "streams", "--metrics-port", str(port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        engine = create_engine(database_url)
        count_sql = text("SELECT (SELECT count(*) FROM glucose_readings) + (SELECT count(*) FROM meals) + "
                         "(SELECT count(*) FROM blood_pressure_readings)")
        first_row = None
        stored = 0
        deadline = time.monotonic() + 900
        while stored < len(events) and time.monotonic() < deadline:
            with engine.connect() as db:
                stored = int(db.execute(count_sql).scalar_one())
            if stored and first_row is None:
                first_row = time.perf_counter()
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited with {worker.returncode}; see {log_path}")
            time.sleep(0.2)
        done = time.perf_counter()
        if first_row is None or stored < len(events):
            raise RuntimeError(f"worker stored {stored} of {len(events)} rows; see {log_path}")
        worker_rate = len(events) / (done - first_row)
        samples = scrape_metrics(port)
        batches = samples.get('vitalstream_streams_batch_size_count{agent="events"}', 0.0)
        batch_mean = samples.get('vitalstream_streams_batch_size_sum{agent="events"}', 0.0) / max(batches, 1)
        db_mean = samples.get("vitalstream_streams_db_write_seconds_sum{}", 0.0) / max(
            samples.get("vitalstream_streams_db_write_seconds_count{}", 0.0), 1)
        print(f"worker: {worker_rate:,.0f} events/s into TimescaleDB ({done - first_row:.1f} s; first row "
              f"{first_row - launched:.1f} s after launch; {batches:.0f} batches of {batch_mean:,.0f} on average, "
              f"{db_mean:.2f} s per transaction)", flush=True)

        before = scrape_metrics(port)
        latencies = light_load_latency(settings.kafka, prefix, database_url, args.light_users,
                                       args.light_interval_ms / 1000, args.light_seconds)
        after = scrape_metrics(port)

        def delta(name: str) -> float:
            return after.get(name, 0.0) - before.get(name, 0.0)

        events_label = '{agent="events"}'
        light_batches = max(delta(f"vitalstream_streams_batch_size_count{events_label}"), 1.0)
        light_mean = delta(f"vitalstream_streams_batch_size_sum{events_label}") / light_batches
        light_batch_ms = delta(f"vitalstream_streams_batch_seconds_sum{events_label}") / light_batches * 1000
        light_db_ms = delta("vitalstream_streams_db_write_seconds_sum{}") / light_batches * 1000
        print(f"light load, in the worker: {light_batches:.0f} batches of {light_mean:.1f} readings, "
              f"{light_batch_ms:.0f} ms per batch of which {light_db_ms:.0f} ms in the database; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        rate = args.light_users / (args.light_interval_ms / 1000)
        print(f"reading -> tier in storage at light load ({args.light_users} users, one reading each per "
              f"{args.light_interval_ms} ms = {rate:.0f} readings/s, {len(latencies)} readings): "
              f"p50 {percentile(latencies, 50) * 1000:.0f} ms, p99 {percentile(latencies, 99) * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms", flush=True)
        print("\n| backlog | raw consumer (msg/s) | worker → TimescaleDB (events/s) | worker / raw | "
              "tier latency p50 / p99 (ms) |\n|---|---:|---:|---:|---:|")
        print(f"| {len(events):,} events, {args.users} users | {raw_rate:,.0f} | {worker_rate:,.0f} | "
              f"{worker_rate / raw_rate:.3f} | {percentile(latencies, 50) * 1000:.0f} / "
              f"{percentile(latencies, 99) * 1000:.0f} |")
        engine.dispose()
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        admin = AdminClient({"bootstrap.servers": settings.kafka})
        leftovers = [n for n in admin.list_topics(timeout=10).topics if n.startswith((prefix, f"{app_id}-"))]
        if leftovers:
            for future in admin.delete_topics(leftovers, operation_timeout=30).values():
                try:
                    future.result(timeout=30)
                except Exception as error:  # cleanup is best effort
                    print(f"could not delete a topic: {error}", file=sys.stderr)
        cleanup.close()


def light_load_latency(kafka: str, prefix: str, database_url: str, users: int, interval_s: float,
                       duration_s: float) -> list[float]:
    """Seconds from sending each reading to its effect on the user's tier being visible in storage.

    `users` people each send a CGM reading every `interval_s` (staggered) for `duration_s`. A reading's effect is
    visible once the user's stored risk_tier_rank is as of that reading (user_metrics_current.as_of), which the
    worker writes in the same transaction as the reading; the table is polled every 10 ms.
    """
    run = uuid.uuid4().hex[:6]
    people = [f"probe-{run}-{index}" for index in range(users)]
    sent: dict[tuple[str, datetime], float] = {}
    seen: dict[tuple[str, datetime], float] = {}
    stop = threading.Event()
    engine = create_engine(database_url, pool_size=1)
    poll = text("SELECT user_id, as_of FROM user_metrics_current WHERE metric = 'risk_tier_rank' "
                "AND user_id = ANY(:users)")

    def watch() -> None:
        with engine.connect() as connection:
            while not stop.is_set():
                as_of: dict[str, datetime] = {user: at for user, at in connection.execute(poll, {"users": people})}
                connection.commit()
                now = time.perf_counter()
                for key in sent.keys() - seen.keys():
                    user, occurred_at = key
                    if user in as_of and as_of[user] >= occurred_at:
                        seen[key] = now
                time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    topic = prefixed(READINGS, prefix)
    try:
        with EventProducer(ProducerConfig(bootstrap_servers=kafka, linger_ms=0)) as producer:
            # Warm-up, not timed: one reading per person, so that every person is known to the worker and the
            # worker has finished with whatever it did before (the backlog's last commits).
            warm = {(user, datetime.now(UTC).replace(microsecond=0)) for user in people}
            for user, at in warm:
                producer.send(topic, probe_reading(user, at))
                sent[user, at] = time.perf_counter()
            producer.flush()
            deadline = time.monotonic() + 60
            while not warm <= seen.keys() and time.monotonic() < deadline:
                time.sleep(0.05)
            for key in warm:
                sent.pop(key, None)
                seen.pop(key, None)
            time.sleep(1.0)
            began = time.perf_counter()
            tick = 0
            while time.perf_counter() - began < duration_s:
                # Staggered: one of the users sends every interval_s / users.
                user = people[tick % users]
                target = began + tick * interval_s / users
                time.sleep(max(0.0, target - time.perf_counter()))
                now = datetime.now(UTC)
                # Whole milliseconds: as_of comes back through an epoch float, exact at this precision.
                at = now.replace(microsecond=now.microsecond // 1000 * 1000)
                producer.send(topic, probe_reading(user, at))
                producer.poll(0)
                sent[user, at] = time.perf_counter()
                tick += 1
        deadline = time.monotonic() + 30
        while len(seen) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        watcher.join()
        engine.dispose()
    missing = sent.keys() - seen.keys()
    if missing:
        raise RuntimeError(f"{len(missing)} of {len(sent)} readings not visible in storage within 30 s")
    return [seen[key] - sent[key] for key in sent]


def probe_reading(user: str, at: datetime) -> GlucoseReading:
    return GlucoseReading(user_id=user, device_id="cgm", source=Source.DEVICE, occurred_at=at, received_at=at,
                          unit=GlucoseUnit.MG_DL, value=110.0, kind=GlucoseKind.CGM)


if __name__ == "__main__":
    main()
