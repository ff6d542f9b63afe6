"""Producer throughput: the project's EventProducer (encode + send + flush) vs raw confluent-kafka.

Both run in the same process against the same broker with the same producer settings (idempotence, acks=all,
murmur2_random, linger, zstd); the raw producer sends the project's already-encoded bytes, so the ratio is
the cost of encoding, headers and delivery-report bookkeeping.

Run:  KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:39092 .venv/bin/python -m bench.produce [--users 50 --days 3 --rounds 3]
(default address: the local stack's, from Settings). Topics are private and deleted afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.machine import machine
from producers.client import EventProducer
from producers.config import ProducerConfig
from producers.simulator import simulate
from schemas.codec import encode
from schemas.events import Event
from schemas.topics import READINGS, Topic
from vitalstream.config import get_settings


def project_run(config: ProducerConfig, topic: Topic, events: list[Event]) -> float:
    started = time.perf_counter()
    with EventProducer(config) as producer:
        for event in events:
            producer.send(topic, event)
    elapsed = time.perf_counter() - started
    assert producer.counts.delivered == len(events), producer.counts
    return elapsed


def raw_run(config: ProducerConfig, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    producer = Producer(config.librdkafka())
    started = time.perf_counter()
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(60)
    elapsed = time.perf_counter() - started
    assert remaining == 0, f"{remaining} raw messages undelivered"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    bootstrap = get_settings().kafka
    start = datetime(2025, 3, 1, tzinfo=UTC)
    events = [e.event for e in simulate(1, args.users, start, args.days) if e.topic is READINGS]
    payloads = [(e.user_id.encode(), encode(e)) for e in events]
    mean_bytes = statistics.mean(len(v) for _, v in payloads)
    started = time.perf_counter()
    for event in events:
        encode(event)
    encode_s = time.perf_counter() - started

    admin = AdminClient({"bootstrap.servers": bootstrap})
    suffix = uuid.uuid4().hex[:8]
    names = [f"bench-produce-{kind}-{suffix}-{r}" for r in range(args.rounds) for kind in ("project", "raw")]
    for future in admin.create_topics([NewTopic(n, num_partitions=READINGS.partitions, replication_factor=1)
                                       for n in names]).values():
        future.result(timeout=30)
    config = ProducerConfig(bootstrap_servers=bootstrap)
    project_s, raw_s = [], []
    try:
        for r in range(args.rounds):  # alternate, so drift (page cache, JIT of the broker) hits both alike
            project_s.append(project_run(config, replace(READINGS, name=f"bench-produce-project-{suffix}-{r}"), events))
            raw_s.append(raw_run(config, f"bench-produce-raw-{suffix}-{r}", payloads))
    finally:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(timeout=60)

    n = len(events)
    project_rate, raw_rate = n / statistics.median(project_s), n / statistics.median(raw_s)
    print(f"machine: {machine()}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, broker: {bootstrap}")
    print(f"settings: {', '.join(f'{k}={v}' for k, v in config.librdkafka().items() if k != 'bootstrap.servers')}")
    print(f"messages: {n:,} readings per run ({args.users} users × {args.days:g} days), mean {mean_bytes:.0f} B, "
          f"{args.rounds} rounds, median reported")
    print(f"project EventProducer (encode+send+flush): {project_rate:>9,.0f} readings/s  "
          f"(runs: {', '.join(f'{s:.2f}' for s in project_s)} s)")
    print(f"raw confluent-kafka (pre-encoded bytes):   {raw_rate:>9,.0f} readings/s  "
          f"(runs: {', '.join(f'{s:.2f}' for s in raw_s)} s)")
    print(f"ratio project / raw: {project_rate / raw_rate:.2f}  "
          f"(encoding alone: {n / encode_s:,.0f} events/s, {encode_s / n * 1e6:.1f} µs each)")


if __name__ == "__main__":
    main()
