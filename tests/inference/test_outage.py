"""Triton stopped for 60 s in the middle of 500 photos: the consumer pauses its partitions, publishes and
commits nothing meanwhile, and once Triton is back every photo is analysed exactly once.

The consumer runs as `vitalstream worker inference` in a subprocess; Triton is a server of this test's own
(same binary and model repository as the local stack's), stopped by PID with stack.triton.Triton.stop and
started again, so the session's Triton is never touched.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from producers.photos import render_meal_photo
from schemas.codec import decode
from schemas.topics import MEAL_ANALYSES
from stack.probes import free_port
from stack.triton import Triton
from tests.inference.conftest import DeploymentFactory
from tests.inference.deployment import TopicReader
from vitalstream.config import Settings

pytestmark = [pytest.mark.stack, pytest.mark.slow]

PHOTOS = 500
OUTAGE_S = 60.0
#: Meals keep coming during the outage, as they would: the producer sends this many per second throughout.
MEALS_PER_S = 40.0
#: Triton is stopped once this many analyses are out.
STOP_AFTER = 100


@pytest.fixture
def own_triton(triton_url: str, tmp_path: Path) -> Iterator[Triton]:
    """A Triton of this test's own on free ports; the session's (triton_url) made sure the server is installed."""
    shared = Settings()
    stack_dir = tmp_path / "stack"
    (stack_dir / "cache").mkdir(parents=True)
    # Share the installed server instead of installing it again (Triton looks in its own cache first).
    (stack_dir / "cache" / "triton").symlink_to(shared.stack_dir / "cache" / "triton")
    server = Triton(Settings(stack_dir=stack_dir, model_repository=shared.model_repository,
                             triton_http_port=free_port(), triton_grpc_port=free_port(),
                             triton_metrics_port=free_port()))
    server.install()
    server.start()
    server.wait_ready()
    yield server
    server.stop()


def test_a_60_s_triton_outage_loses_and_duplicates_nothing(deployment: DeploymentFactory, own_triton: Triton) -> None:
    d = deployment(triton_url=f"127.0.0.1:{own_triton.settings.triton_grpc_port}", triton_protocol="grpc")
    meals = [d.meal(d.put_photo(render_meal_photo(seed=1000 + i), f"user-{i % 37}/{i}.jpg"), user=f"user-{i % 37}")
             for i in range(PHOTOS)]
    analyses = TopicReader(d.kafka, d.topics.analyses.name)
    consumer = d.start_process()
    d.wait_for(lambda: consumer.metric("vitalstream_inference_paused") is not None, timeout_s=60,
               what="the consumer's /metrics endpoint")

    sent = d.send_paced(meals, MEALS_PER_S)
    try:
        d.wait_for(lambda: len(analyses) >= STOP_AFTER, timeout_s=60, what=f"{STOP_AFTER} analyses before the outage")
        own_triton.stop()
        stopped = time.monotonic()
        d.wait_for(lambda: consumer.metric("vitalstream_inference_paused") == 1, timeout_s=20,
                   what="partitions paused after Triton stopped")
        time.sleep(5)  # requests already answered before the stop are published by now
        published_before = len(analyses)
        lag_seen = broker_lag_seen = 0.0
        while time.monotonic() - stopped < OUTAGE_S:
            lag_seen = max(lag_seen, sum(consumer.metric_family("vitalstream_inference_consumer_lag").values()))
            broker_lag_seen = max(broker_lag_seen,
                                  sum(consumer.metric_family("vitalstream_consumer_lag_messages").values()))
            assert len(analyses) == published_before, "nothing is published while Triton is down"
            time.sleep(1)
        committed_during = sum(max(0, offset) for offset in d.committed().values())
        assert committed_during <= published_before, "only published meals are committed"
        assert consumer.metric("vitalstream_inference_paused") == 1
        assert lag_seen > 0 and broker_lag_seen > 0, "meals kept coming while paused: the lag shows them waiting"
        assert sent.wait(timeout=30), "every meal was sent"

        own_triton.start()
        own_triton.wait_ready()
        back = time.monotonic()
        d.wait_for(lambda: len(analyses) >= PHOTOS, timeout_s=90, what="all analyses after Triton returned")
        recovered_s = time.monotonic() - back
        d.wait_for(d.fully_committed, timeout_s=20, what="every offset committed")
        assert consumer.metric("vitalstream_inference_paused") == 0
        assert (consumer.metric("vitalstream_inference_errors_total", reason="triton_unavailable") or 0) >= 1
    finally:
        exit_code = consumer.stop()
        time.sleep(1)  # the reader catches up with anything published during shutdown
        analyses.close()
    assert exit_code == 0, consumer.log_tail()

    events = [decode(MEAL_ANALYSES, m.value() or b"") for m in analyses.messages]
    ids = Counter(e.event_id for e in events)
    duplicates = len(events) - len(ids)
    print(f"\noutage: {published_before} analysed before, Triton down {OUTAGE_S:.0f} s, all {PHOTOS} done "
          f"{recovered_s:.1f} s after it was back; {len(events)} messages, {len(ids)} distinct ids, "
          f"{duplicates} duplicates")
    assert len(ids) == PHOTOS, "0 lost"
    assert {e.meal_event_id for e in events} == {m.event_id for m in meals}
    assert len(events) == PHOTOS, f"0 duplicated ({duplicates} repeats, their ids collide: {len(ids)} distinct)"
    assert d.consume(d.topics.dead_letter.name, expect=0, timeout_s=1) == []

