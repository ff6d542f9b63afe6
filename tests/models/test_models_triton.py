"""meal_analyzer served by the real local Triton (python backend), on real photos.

Its answers must equal the production graphs run directly in onnxruntime (what production's ensemble of
onnxruntime models computes), and be right: meals pass the gate, reports and other scenes do not, the coffee
photo is an espresso. Per-image latency is measured and reported, not asserted.
"""

from __future__ import annotations

import re
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from numpy.typing import NDArray

from inference_consumer.models import glue, repository
from inference_consumer.models.testing import BuiltModels
from stack.base import StackError
from stack.triton import Triton
from vitalstream.config import Settings

pytestmark = [pytest.mark.stack, pytest.mark.slow]

MODEL = "meal_analyzer"
OUTPUTS = list(glue.OUTPUT_WIDTHS)
#: Photos are scored in one batch by Triton and one by onnxruntime: only float rounding may differ.
ATOL = 1e-5
#: The gate's decision threshold used here: what the consumer will treat as "this is a meal".
FOOD_THRESHOLD = 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _triton(stack_dir: Path, repository_dir: Path) -> Triton:
    return Triton(Settings(stack_dir=stack_dir, model_repository=repository_dir, triton_http_port=_free_port(),
                           triton_grpc_port=_free_port(), triton_metrics_port=_free_port()))


@pytest.fixture(scope="module")
def triton(built_models: BuiltModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triton]:
    server = _triton(tmp_path_factory.mktemp("stack"), built_models.local)
    server.install()
    server.start()
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture
def http(triton: Triton) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{triton.settings.triton_http_port}", concurrency=8)
    yield client
    client.close()  # before the server stops: keep-alive would hold its shutdown


def _infer(client: httpclient.InferenceServerClient, images: NDArray[np.uint8],
           outputs: list[httpclient.InferRequestedOutput] | None = None) -> httpclient.InferResult:
    image = httpclient.InferInput("image", list(images.shape), "UINT8")
    image.set_data_from_numpy(images, binary_data=True)
    return client.infer(MODEL, [image], outputs=outputs)


def _production_graphs(prod: Path) -> Callable[[NDArray[np.uint8]], dict[str, NDArray[np.float32]]]:
    """The production ensemble's steps, each graph run as production's onnxruntime backend would."""
    sessions = {name: ort.InferenceSession(str(prod / name / repository.VERSION / "model.onnx"),
                                           providers=["CPUExecutionProvider"]) for name in repository.GRAPHS}

    def run(images: NDArray[np.uint8]) -> dict[str, NDArray[np.float32]]:
        (pixels,) = sessions["meal_preprocess"].run(None, {"image": images})
        (gate_raw,) = sessions["food_gate"].run(None, {"input": pixels})
        (imagenet_probs,) = sessions["dish_classifier"].run(None, {"input": pixels})
        outputs = sessions["meal_postprocess"].run(OUTPUTS, {"gate_raw": gate_raw, "imagenet_probs": imagenet_probs})
        return dict(zip(OUTPUTS, outputs, strict=True))

    return run


@pytest.fixture(scope="module")
def photo_batch(built_models: BuiltModels) -> tuple[list[str], NDArray[np.uint8]]:
    names = sorted(p.name for p in built_models.photos.iterdir())
    return names, np.stack([built_models.photo(n) for n in names])


def test_triton_answers_equal_the_production_graphs(built_models: BuiltModels, http: httpclient.InferenceServerClient,
                                                     photo_batch: tuple[list[str], NDArray[np.uint8]]) -> None:
    _, images = photo_batch
    served = _infer(http, images)
    direct = _production_graphs(built_models.prod)(images)
    for name, width in glue.OUTPUT_WIDTHS.items():
        assert served.as_numpy(name).shape == (len(images), width)
        np.testing.assert_allclose(served.as_numpy(name), direct[name], atol=ATOL, err_msg=name)


def test_meal_photos_pass_the_gate_and_others_do_not(built_models: BuiltModels,
                                                     http: httpclient.InferenceServerClient,
                                                     photo_batch: tuple[list[str], NDArray[np.uint8]]) -> None:
    names, images = photo_batch
    result = _infer(http, images)
    food_prob = dict(zip(names, result.as_numpy("food_prob")[:, 0].tolist(), strict=True))
    food_score = dict(zip(names, result.as_numpy("food_score_imagenet")[:, 0].tolist(), strict=True))
    for name in built_models.photo_names("meal_"):
        assert food_prob[name] > FOOD_THRESHOLD and food_score[name] > 0.5, (name, food_prob[name], food_score[name])
    for name in built_models.photo_names("other_") + built_models.photo_names("report_") + ["chelsea.png"]:
        assert food_prob[name] < FOOD_THRESHOLD, (name, food_prob[name])
    np.testing.assert_allclose(result.as_numpy("gate_probs").sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(result.as_numpy("dish_probs").sum(axis=1), 1.0, atol=1e-5)


def test_coffee_photo_is_named_espresso_through_the_classification_extension(
        built_models: BuiltModels, http: httpclient.InferenceServerClient) -> None:
    result = _infer(http, built_models.photo("coffee.png")[None],
                    [httpclient.InferRequestedOutput("dish_probs", class_count=3),
                     httpclient.InferRequestedOutput("food_score_imagenet")])
    score, index, label = result.as_numpy("dish_probs")[0][0].decode().split(":")
    assert (label, int(index)) == ("espresso", 43)
    assert float(score) > 0.85
    assert result.as_numpy("food_score_imagenet")[0, 0] > 0.9


def test_grpc_gives_the_same_answer(triton: Triton, built_models: BuiltModels,
                                    http: httpclient.InferenceServerClient) -> None:
    image = built_models.photo("meal_2.jpg")[None]
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{triton.settings.triton_grpc_port}")
    try:
        request = grpcclient.InferInput("image", list(image.shape), "UINT8")
        request.set_data_from_numpy(image)
        over_grpc = client.infer(MODEL, [request]).as_numpy("dish_probs")
    finally:
        client.close()
    np.testing.assert_allclose(over_grpc, _infer(http, image).as_numpy("dish_probs"), atol=ATOL)


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(
        triton: Triton, built_models: BuiltModels, http: httpclient.InferenceServerClient,
        photo_batch: tuple[list[str], NDArray[np.uint8]]) -> None:
    _, images = photo_batch
    expected = _infer(http, images).as_numpy("gate_probs")
    before = _batch_stats(triton)
    order = [i % len(images) for i in range(48)]
    url = f"127.0.0.1:{triton.settings.triton_http_port}"

    def one(i: int) -> NDArray[np.float32]:
        # A client per thread: eight requests truly in flight at once, so they queue behind the one instance.
        with httpclient.InferenceServerClient(url) as client:
            result: NDArray[np.float32] = _infer(client, images[i:i + 1]).as_numpy("gate_probs")[0]
            return result

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(one, order))
    for i, answer in zip(order, answers, strict=True):
        np.testing.assert_allclose(answer, expected[i], atol=ATOL)
    requests, executions = (after - b for after, b in zip(_batch_stats(triton), before, strict=True))
    assert requests == len(order)
    assert executions < requests, "dynamic batching ran some requests together"


def _batch_stats(triton: Triton) -> tuple[float, float]:
    metrics = httpx.get(f"http://127.0.0.1:{triton.settings.triton_metrics_port}/metrics", timeout=5).text
    values = {}
    for line in metrics.splitlines():
        for metric in ("nv_inference_request_success", "nv_inference_exec_count"):
            if line.startswith(metric + "{") and f'model="{MODEL}"' in line:
                values[metric] = float(line.rsplit(" ", 1)[1])
    return values["nv_inference_request_success"], values["nv_inference_exec_count"]


def test_per_image_latency(built_models: BuiltModels, http: httpclient.InferenceServerClient,
                           request: pytest.FixtureRequest) -> None:
    image = built_models.photo("meal_1.jpg")[None]
    expected = _infer(http, image).as_numpy("food_prob")
    latencies_ms = []
    for _ in range(30):
        t0 = time.perf_counter()
        food_prob = _infer(http, image).as_numpy("food_prob")
        latencies_ms.append((time.perf_counter() - t0) * 1000)
        np.testing.assert_allclose(food_prob, expected, atol=ATOL)
    report = (f"meal_analyzer over HTTP, one 224×224 photo per request: median {statistics.median(latencies_ms):.1f} "
              f"ms, p90 {np.percentile(latencies_ms, 90):.1f} ms (n={len(latencies_ms)})")
    request.node.user_properties.append(("latency", report))
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{report}")


def test_a_repository_without_weights_fails_fast_and_install_rebuilds_them(
        built_models: BuiltModels, tmp_path: Path) -> None:
    unbuilt = tmp_path / "repository"
    repository.write(repository.LOCAL, unbuilt, built_models.report.graphs)
    weights = unbuilt / MODEL / repository.VERSION / "food_gate.onnx"
    weights.unlink()
    server = _triton(tmp_path / "stack", unbuilt)
    server.start()  # without install(): nothing puts the weights back
    try:
        with pytest.raises(StackError, match="process exited before it was ready"):
            server.wait_ready()  # Triton exits when a model fails to load at start-up
    finally:
        server.stop()
    assert re.search(r"food_gate\.onnx missing in \S+: run `vitalstream models build`", server.log_file.read_text())
    server.install()  # what `stack up` does first: the local repository's weights are generated again
    assert weights.is_file()
    server.start()
    try:
        server.wait_ready()
    finally:
        server.stop()
