"""`vitalstream worker streams` as a subprocess: its /metrics exports its own consumer group's lag (read from the
broker) and the time of the last stored reading, and Faust's data directory stays out of the working directory."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.topics import READINGS
from tests.streams.deployment import Deployment, WorkerProcess, deployment_fixture
from tests.streams.factories import cgm

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployment(kafka_bootstrap: str, fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    yield from deployment_fixture(kafka_bootstrap, fresh_database_url, tmp_path_factory.mktemp("worker-telemetry"))


@pytest.fixture(scope="module")
def worker(deployment: Deployment) -> WorkerProcess:
    worker = deployment.start_worker()
    at = datetime.now(UTC) - timedelta(minutes=30)
    users = [f"lag-{i}" for i in range(24)]  # spread over the 12 partitions
    with deployment.producer() as producer:
        for user in users:
            for k in range(3):
                producer.send(deployment.topic(READINGS), cgm(user, at + timedelta(minutes=5 * k), 110.0))
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM glucose_readings") == 3 * len(users),
                        timeout_s=90, what="every reading stored")
    return worker


def test_metrics_export_the_workers_own_consumer_lag(deployment: Deployment, worker: WorkerProcess) -> None:
    readings = deployment.topics.readings.name

    def lag_series() -> dict[str, float]:
        prefix = f'vitalstream_consumer_lag_messages{{group="{deployment.app_id}",partition='
        series = {key: value for key, value in worker.metrics().items() if key.startswith(prefix)}
        # Faust commits every few seconds; a partition has a series once the group committed an offset there.
        return series if any(f'topic="{readings}"' in key for key in series) else {}

    series = deployment.wait_for(lag_series, timeout_s=60, what="lag series of the worker's group")
    assert worker.metric("vitalstream_consumer_lag_available", group=deployment.app_id) == 1.0
    # Everything was stored, so once committed the group's lag on readings drains to zero.
    deployment.wait_for(lambda: sum(v for k, v in lag_series().items() if f'topic="{readings}"' in k) == 0,
                        timeout_s=60, what="the readings lag to drain")
    assert {"vitalstream_consumer_lag_messages"} == {key.split("{")[0] for key in series}


def test_metrics_export_the_time_of_the_last_stored_reading(worker: WorkerProcess) -> None:
    value = worker.metric("vitalstream_streams_last_reading_timestamp_seconds", type="glucose", source="device")
    # Set when the readings were stored (wall clock), not their occurred_at 30 minutes earlier.
    assert time.time() - 120 < value <= time.time()


def test_faust_keeps_its_data_directory_under_the_temp_dir(deployment: Deployment, worker: WorkerProcess) -> None:
    assert worker.running
    assert (Path(tempfile.gettempdir()) / "vitalstream-faust" / deployment.app_id).is_dir()
    assert not (Path.cwd() / f"{deployment.app_id}-data").exists()
