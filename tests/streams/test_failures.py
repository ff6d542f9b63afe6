"""A batch the database rejects is never acknowledged: the worker exits before committing its offsets, and a
worker with a working database later stores every event of it. SIGTERM stops a worker cleanly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from schemas.topics import READINGS
from storage.migrate import scratch_database
from streams.agents import EXIT_BATCH_FAILED
from tests.streams.deployment import Deployment, deployment_fixture
from tests.streams.factories import cgm

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployment(kafka_bootstrap: str, fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    yield from deployment_fixture(kafka_bootstrap, fresh_database_url, tmp_path_factory.mktemp("streams-failures"))


@pytest.fixture
def empty_database_url(database_url: str) -> Iterator[str]:
    """A database without the schema: every insert fails with 'relation does not exist' (not transient)."""
    with scratch_database(database_url, "streams_empty", migrate=False) as url:
        yield url


def test_a_rejected_batch_is_not_committed_and_is_processed_later(deployment: Deployment,
                                                                  empty_database_url: str) -> None:
    # One static member for both, as a supervisor restarting the same replica would: the restarted worker gets
    # the partitions at once (the exited one never left the group; dynamic members wait out its session).
    broken = deployment.start_worker("broken", DATABASE_URL=empty_database_url,
                                     VITALSTREAM_STREAMS_INSTANCE_ID="replica-0")
    at = datetime.now(UTC) - timedelta(hours=1)
    with deployment.producer() as producer:
        for k in range(10):
            producer.send(deployment.topic(READINGS), cgm("fail-user", at + timedelta(minutes=5 * k), 100.0 + k))
    process = broken.process
    assert process is not None
    deployment.wait_for(lambda: process.poll() is not None, timeout_s=90, what="the broken worker to exit")
    assert process.returncode == EXIT_BATCH_FAILED
    assert "a batch could not be processed" in broken.log_tail(20_000)
    assert deployment.lag()[deployment.topics.readings.name] == 10  # nothing was committed

    healthy = deployment.start_worker("healthy", VITALSTREAM_STREAMS_INSTANCE_ID="replica-0")
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM glucose_readings WHERE user_id = "
                                                  "'fail-user'") == 10, timeout_s=90, what="all 10 readings")
    deployment.wait_for(lambda: deployment.lag()[deployment.topics.readings.name] == 0, timeout_s=30,
                        what="the offsets to be committed")
    assert healthy.stop() == 0
