"""`vitalstream worker streams` as a subprocess: a reading the database refuses goes to the dead-letter topic as
storage_rejected, the rest of its batch is stored and the worker keeps going, committing its offsets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from schemas.events import Event
from schemas.topics import READINGS
from tests.streams.deployment import Deployment, deployment_fixture
from tests.streams.factories import cgm_trace

pytestmark = pytest.mark.slow

REFUSED_DEVICE = "refused-by-db"


@pytest.fixture(scope="module")
def deployment(kafka_bootstrap: str, fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    yield from deployment_fixture(kafka_bootstrap, fresh_database_url,
                                  tmp_path_factory.mktemp("streams-storage-rejections"))


def test_a_refused_reading_is_dead_lettered_and_the_worker_keeps_going(deployment: Deployment) -> None:
    with deployment.engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE glucose_readings ADD CONSTRAINT refuse_device "
                                f"CHECK (device_id <> '{REFUSED_DEVICE}')"))
    users = [f"wrej-{i}" for i in range(4)]
    start = datetime.now(UTC) - timedelta(hours=1)
    events: list[Event] = []
    for user in users:
        trace = cgm_trace(user, start, [100.0 + i for i in range(10)])
        if user == "wrej-1":
            trace[4] = trace[4].model_copy(update={"device_id": REFUSED_DEVICE})
        events += trace
    # Produced before the worker starts, so they arrive in one or a few batches of several users.
    with deployment.producer() as producer:
        for event in events:
            producer.send(deployment.topic(READINGS), event)
    worker = deployment.start_worker()

    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM glucose_readings WHERE user_id LIKE "
                                                  "'wrej-%'") == 39, timeout_s=90, what="the 39 good readings")
    deployment.wait_for(lambda: deployment.scalar("SELECT count(DISTINCT user_id) FROM glucose_metrics WHERE "
                                                  "user_id LIKE 'wrej-%'") == 4, timeout_s=30,
                        what="every user's metrics")
    [letter] = deployment.consume(deployment.topics.dead_letter, expect=1)
    headers = dict(letter.headers() or [])
    reason, error = headers.get("reason"), headers.get("error")
    assert reason == b"storage_rejected" and isinstance(error, bytes) and b"violates check constraint" in error
    assert letter.key() == b"wrej-1" and REFUSED_DEVICE.encode() in (letter.value() or b"")
    deployment.wait_for(lambda: deployment.lag()[deployment.topics.readings.name] == 0, timeout_s=30,
                        what="the offsets to be committed")
    assert worker.metric("vitalstream_streams_dead_letters_total", reason="storage_rejected") == 1.0
    assert worker.metric("vitalstream_streams_events_total", type="glucose", outcome="dead_letter") == 1.0
    assert worker.running
    assert worker.stop() == 0
