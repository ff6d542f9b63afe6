"""Meal-photo throughput: through the inference consumer (Kafka in → MealAnalyzed out) vs direct Triton calls.

Both in the same run, against the same Triton (TRITON_URL / TRITON_PROTOCOL, default: the local stack's) and the
same photos, with the same batch size:

  consumer  `vitalstream worker inference` in a subprocess, reading a private meal topic: after a warm-up batch,
            N MealLogged events are produced at once and the clock stops when the N-th MealAnalyzed is read back
            (object store read, sha256 check, JPEG decode, crop, batching, Triton, publish, commit);
  direct    tritonclient `infer` of the same photos, already decoded and cropped, `--batch` per request, one
            request after another (the server's own throughput for that batch size).

Rounds alternate; the median of each is reported, with the consumer's mean batch size and the decode rate alone.
Topics are private and deleted afterwards.

Run:  .venv/bin/python -m bench.inference [--photos 500 --batch 16 --rounds 3 --size 512]
      (needs Kafka and Triton up, e.g. `vitalstream stack up kafka triton`)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from numpy.typing import NDArray
from prometheus_client.parser import text_string_to_metric_families

from bench.machine import machine
from inference_consumer.consumer import ConsumerTopics
from inference_consumer.photos import decode_photo
from producers.client import EventProducer
from producers.config import ProducerConfig
from producers.photos import photo_ref, render_meal_photo
from schemas.events import MealLogged, PhotoContentType
from vitalstream.config import Settings, get_settings
from vitalstream.kafka_admin import create_topics
from vitalstream.object_store import LocalObjectStore

MODEL = "meal_analyzer"
USERS = 50
LAUNCH = "from vitalstream.logs import configure_logging; configure_logging('WARNING'); " \
         "from inference_consumer.worker import run; from vitalstream.config import get_settings; " \
         "import sys; run(get_settings(), int(sys.argv[1]))"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    return {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples if not s.labels}


class _Reader:
    """Counts messages on a topic from its start."""

    def __init__(self, kafka: str, topic: str) -> None:
        self._consumer = Consumer({"bootstrap.servers": kafka, "group.id": f"bench-reader-{uuid.uuid4()}",
                                   "enable.auto.commit": False})
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self.count = 0

    def wait_for(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.count < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.count} of {count} analyses after {timeout_s:.0f} s")
            self.count += sum(1 for m in self._consumer.consume(1000, timeout=0.05) if m.error() is None)

    def close(self) -> None:
        self._consumer.close()


def consumer_round(settings: Settings, photos: list[bytes], batch: int) -> tuple[float, float]:
    """Seconds for len(photos) photos through the consumer, and its mean batch size."""
    tag = uuid.uuid4().hex[:8]
    prefix, group = f"bench{tag}.", f"bench-inference-{tag}"
    topics = ConsumerTopics.with_prefix(prefix)
    admin = AdminClient({"bootstrap.servers": settings.kafka})
    create_topics(admin, topics.all())
    store_dir = Path(tempfile.mkdtemp(prefix="bench-objects-"))
    store = LocalObjectStore(store_dir)
    warm_up = [render_meal_photo(seed=10_000 + i, size_px=256) for i in range(batch)]
    meals = []
    for i, data in enumerate([*warm_up, *photos]):
        key = f"meal-photos/u{i % USERS}/{i}.jpg"
        store.put(key, data)
        meals.append(MealLogged(user_id=f"u{i % USERS}", device_id="bench", source="simulator",
                                occurred_at=datetime.now(UTC), meal_slot="lunch",
                                photo=photo_ref(key, data, PhotoContentType.JPEG)))
    port = _free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka, "TRITON_URL": settings.triton,
           "TRITON_PROTOCOL": settings.triton_protocol, "VITALSTREAM_INFERENCE_TOPIC_PREFIX": prefix,
           "VITALSTREAM_INFERENCE_GROUP_ID": group, "VITALSTREAM_OBJECT_STORE_DIR": str(store_dir),
           "VITALSTREAM_INFERENCE_MAX_BATCH": str(batch)}
    worker = subprocess.Popen([sys.executable, "-c", LAUNCH, str(port)], env=env)
    reader = _Reader(settings.kafka, topics.analyses.name)
    try:
        with EventProducer(ProducerConfig(bootstrap_servers=settings.kafka)) as producer:
            for meal in meals[:batch]:
                producer.send(topics.meals, meal)
        reader.wait_for(batch, timeout_s=120)  # the group has joined and Triton has warmed up
        before = _metrics(port)
        started = time.perf_counter()
        with EventProducer(ProducerConfig(bootstrap_servers=settings.kafka)) as producer:
            for meal in meals[batch:]:
                producer.send(topics.meals, meal)
        reader.wait_for(len(meals), timeout_s=600)
        elapsed = time.perf_counter() - started
        after = _metrics(port)
        batches = after["vitalstream_inference_batch_size_count"] - before["vitalstream_inference_batch_size_count"]
        return elapsed, len(photos) / max(batches, 1)
    finally:
        reader.close()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        for future in admin.delete_topics([t.name for t in topics.all()], operation_timeout=30).values():
            future.result(timeout=60)
        shutil.rmtree(store_dir, ignore_errors=True)


def direct_round(settings: Settings, images: NDArray[np.uint8], batch: int) -> float:
    """Seconds for tritonclient to infer every image, `batch` per request, one request at a time."""
    if settings.triton_protocol == "grpc":
        import tritonclient.grpc as client_module
    else:
        import tritonclient.http as client_module
    client = client_module.InferenceServerClient(settings.triton)

    def infer(chunk: NDArray[np.uint8]) -> None:
        image = client_module.InferInput("image", list(chunk.shape), "UINT8")
        image.set_data_from_numpy(chunk)
        client.infer(MODEL, [image])

    try:
        infer(images[:batch])  # warm-up
        started = time.perf_counter()
        for start in range(0, len(images), batch):
            infer(images[start:start + batch])
        return time.perf_counter() - started
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--batch", type=int, default=16, help="photos per Triton request (both paths)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=512, help="side of the square JPEG photos, px")
    args = parser.parse_args()

    settings = get_settings()
    photos = [render_meal_photo(seed=i, size_px=args.size) for i in range(args.photos)]
    started = time.perf_counter()
    images = np.stack([decode_photo(p, PhotoContentType.JPEG) for p in photos])
    decode_s = time.perf_counter() - started

    consumer_s, direct_s, batch_means = [], [], []
    for _ in range(args.rounds):  # alternate, so drift (other load, caches) hits both alike
        seconds, mean_batch = consumer_round(settings, photos, args.batch)
        consumer_s.append(seconds)
        batch_means.append(mean_batch)
        direct_s.append(direct_round(settings, images, args.batch))

    n = args.photos
    consumer_rate, direct_rate = n / statistics.median(consumer_s), n / statistics.median(direct_s)
    print(f"machine: {machine()}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, kafka: {settings.kafka}, triton: {settings.triton} "
          f"({settings.triton_protocol}), model: {MODEL}")
    print(f"photos: {n} JPEGs of {args.size}×{args.size} px, batch {args.batch}, {args.rounds} rounds, median "
          f"reported; consumer concurrency {settings.inference_concurrency}, max wait "
          f"{settings.inference_max_wait_ms} ms")
    print(f"consumer (Kafka → decode → Triton → MealAnalyzed): {consumer_rate:>7.1f} photos/s  "
          f"(runs: {', '.join(f'{s:.2f}' for s in consumer_s)} s; mean batch "
          f"{', '.join(f'{b:.1f}' for b in batch_means)})")
    print(f"direct tritonclient (pre-decoded, sequential):      {direct_rate:>7.1f} photos/s  "
          f"(runs: {', '.join(f'{s:.2f}' for s in direct_s)} s)")
    print(f"ratio consumer / direct: {consumer_rate / direct_rate:.2f}  "
          f"(decode + crop alone, one thread: {n / decode_s:.0f} photos/s)")


if __name__ == "__main__":
    main()
