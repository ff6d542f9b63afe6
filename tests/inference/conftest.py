"""Fixtures of the inference-consumer tests: the real test photos, Triton's addresses, private deployments."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from inference_consumer.models import build, fetch
from tests.inference.deployment import Deployment
from vitalstream.config import Settings


@pytest.fixture(scope="session")
def photos() -> Path:
    """The photos fetched with the model weights (meal_*, other_*, report_* .jpg; coffee.png, chelsea.png)."""
    settings = Settings()
    fetch.fetch(settings)  # a no-op once cached
    return build.photos_dir(settings)


@pytest.fixture(scope="session")
def triton_http_url(triton_url: str) -> str:
    """host:port of the same Triton over HTTP (the local stack's; an external TRITON_URL names one protocol)."""
    if os.environ.get("TRITON_URL"):
        pytest.skip("TRITON_URL names one protocol's address; the HTTP test needs the local stack's Triton")
    return f"127.0.0.1:{Settings().triton_http_port}"


DeploymentFactory = Callable[..., Deployment]


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path) -> Iterator[DeploymentFactory]:
    """`deployment(**settings)`: private topics, consumer group and object store; topics deleted afterwards."""
    made: list[Deployment] = []

    def make(**settings: object) -> Deployment:
        created = Deployment.create(kafka_bootstrap, tmp_path / f"deployment-{len(made)}", **settings)
        made.append(created)
        return created

    yield make
    for created in made:
        created.close()
