"""The local stack's Triton: the real server, serving the repository's placeholder model, on its own ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from numpy.typing import NDArray

from stack.base import TrackedProcess, port_open, processes_mentioning
from stack.triton import Triton
from vitalstream.config import Settings

pytestmark = [pytest.mark.stack, pytest.mark.slow]

MODEL = "placeholder"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _settings(stack_dir: Path) -> Settings:
    return Settings(stack_dir=stack_dir, triton_http_port=_free_port(), triton_grpc_port=_free_port(),
                    triton_metrics_port=_free_port())


def _started(stack_dir: Path) -> Triton:
    triton = Triton(_settings(stack_dir))
    triton.install()
    triton.start()
    triton.wait_ready()
    return triton


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triton]:
    server = _started(tmp_path_factory.mktemp("stack"))
    yield server
    server.stop()


@pytest.fixture
def images() -> NDArray[np.uint8]:
    return np.random.default_rng(7).integers(0, 256, size=(2, 32, 48, 3), dtype=np.uint8)


def _expected_mean_rgb(images: NDArray[np.uint8]) -> NDArray[np.float32]:
    means: NDArray[np.float32] = images.reshape(len(images), -1, 3).astype(np.float64).mean(axis=1).astype(np.float32)
    return means


def test_http_inference_returns_each_images_channel_means(triton: Triton, images: NDArray[np.uint8]) -> None:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{triton.settings.triton_http_port}")
    try:
        image = httpclient.InferInput("image", list(images.shape), "UINT8")
        image.set_data_from_numpy(images, binary_data=True)
        mean_rgb = client.infer(MODEL, [image]).as_numpy("mean_rgb")
    finally:
        client.close()
    assert mean_rgb.dtype == np.float32
    np.testing.assert_allclose(mean_rgb, _expected_mean_rgb(images), rtol=1e-6)


def test_grpc_inference_returns_each_images_channel_means(triton: Triton, images: NDArray[np.uint8]) -> None:
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{triton.settings.triton_grpc_port}")
    try:
        image = grpcclient.InferInput("image", list(images.shape), "UINT8")
        image.set_data_from_numpy(images)
        mean_rgb = client.infer(MODEL, [image]).as_numpy("mean_rgb")
        config = client.get_model_config(MODEL, as_json=True)["config"]
    finally:
        client.close()
    np.testing.assert_allclose(mean_rgb, _expected_mean_rgb(images), rtol=1e-6)
    assert config["backend"] == "python"
    assert "dynamic_batching" in config


def test_address_follows_the_protocol_setting(triton: Triton) -> None:
    assert triton.address() == f"127.0.0.1:{triton.settings.triton_grpc_port}"


def test_metrics_endpoint_counts_inferences(triton: Triton, images: NDArray[np.uint8]) -> None:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{triton.settings.triton_http_port}")
    try:
        image = httpclient.InferInput("image", list(images.shape), "UINT8")
        image.set_data_from_numpy(images)
        client.infer(MODEL, [image])
    finally:
        client.close()
    metrics = httpx.get(f"http://127.0.0.1:{triton.settings.triton_metrics_port}/metrics", timeout=5).text
    success = [line for line in metrics.splitlines()
               if line.startswith("nv_inference_request_success{") and f'model="{MODEL}"' in line]
    assert len(success) == 1
    assert float(success[0].rsplit(" ", 1)[1]) >= 1


def test_stop_leaves_neither_server_nor_python_backend_stub(tmp_path: Path) -> None:
    triton = _started(tmp_path)
    server = triton.processes()[0]
    stubs = [TrackedProcess.of(int(c)) for task in Path(f"/proc/{server.pid}/task").iterdir()
             for c in (task / "children").read_text().split()]
    assert stubs, "the python backend runs each model instance in a stub process"

    triton.stop()

    assert not any(p.alive() for p in [server, *stubs])
    assert not any(port_open(port) for port in triton.ports().values())
    assert processes_mentioning([triton.run_dir, triton.cache_dir]) == []
    assert not triton.running()
