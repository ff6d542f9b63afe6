"""The Triton client: batches split to the model's size, outages retried with back-off until a deadline,
refused requests not retried; and the real transports' errors sorted into those two kinds."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from inference_consumer import analysis
from inference_consumer.models.preprocess import photo_to_model_input
from inference_consumer.triton_client import (
    HandlerTransport,
    InferResult,
    Transport,
    TritonClient,
    TritonGaveUpError,
    TritonProtocol,
    TritonRequestError,
    TritonUnavailableError,
    transport_for,
)
from stack.probes import free_port

OUTPUTS = list(analysis.OUTPUT_WIDTHS)


def _echo(model: str, images: NDArray[np.uint8]) -> InferResult:
    """Outputs that say which image they belong to: food_prob is the image's first pixel / 255."""
    first = images[:, 0, 0, 0].astype(np.float32)[:, None] / 255
    return InferResult(model, "7", {name: np.repeat(first, width, axis=1) for name, width in
                                    analysis.OUTPUT_WIDTHS.items()})


def _images(count: int) -> NDArray[np.uint8]:
    images = np.zeros((count, 224, 224, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(count)
    return images


def test_a_batch_above_the_models_maximum_is_sent_in_chunks_and_joined_in_order() -> None:
    sizes: list[int] = []

    def handler(model: str, images: NDArray[np.uint8]) -> InferResult:
        sizes.append(len(images))
        return _echo(model, images)

    client = TritonClient("m", OUTPUTS, lambda: HandlerTransport(handler, max_batch=4))
    result = client.infer(_images(10))
    assert sizes == [4, 4, 2]
    np.testing.assert_allclose(result.outputs["food_prob"][:, 0], np.arange(10) / 255)
    assert (result.model_name, result.model_version) == ("m", "7") and result.seconds > 0


def test_an_outage_is_retried_with_back_off_on_a_fresh_connection() -> None:
    failures = iter([TritonUnavailableError("connection refused"), TritonUnavailableError("still down")])
    made: list[Transport] = []
    retries: list[float] = []

    def handler(model: str, images: NDArray[np.uint8]) -> InferResult:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return _echo(model, images)

    def transport() -> Transport:
        made.append(HandlerTransport(handler))
        return made[-1]

    client = TritonClient("m", OUTPUTS, transport)
    result = client.infer_with_retry(_images(2), time.monotonic() + 30, threading.Event(),
                                     on_retry=lambda error, wait_s: retries.append(wait_s))
    assert result.outputs["food_prob"].shape == (2, 1)
    assert len(retries) == 2 and retries[1] > retries[0] > 0, "exponential back-off"
    assert len(made) == 3, "every outage drops the connection; the next attempt opens a new one"


def test_a_refused_request_is_not_retried() -> None:
    calls = 0

    def handler(model: str, images: NDArray[np.uint8]) -> InferResult:
        nonlocal calls
        calls += 1
        raise TritonRequestError("unexpected shape for input 'image'")

    client = TritonClient("m", OUTPUTS, lambda: HandlerTransport(handler))
    with pytest.raises(TritonRequestError, match="unexpected shape"):
        client.infer_with_retry(_images(1), time.monotonic() + 30, threading.Event())
    assert calls == 1


def _always_down(model: str, images: NDArray[np.uint8]) -> InferResult:
    raise TritonUnavailableError("connection refused")


def test_retries_give_up_at_the_deadline() -> None:
    client = TritonClient("m", OUTPUTS, lambda: HandlerTransport(_always_down))
    started = time.monotonic()
    with pytest.raises(TritonGaveUpError, match="deadline passed") as caught:
        client.infer_with_retry(_images(1), started + 0.5, threading.Event())
    assert 0.5 <= time.monotonic() - started < 1.5, "the last back-off is cut to the deadline"
    assert isinstance(caught.value.__cause__, TritonUnavailableError)


def test_stopping_ends_a_back_off_sleep_at_once() -> None:
    client = TritonClient("m", OUTPUTS, lambda: HandlerTransport(_always_down))
    stopping = threading.Event()
    threading.Timer(0.3, stopping.set).start()
    started = time.monotonic()
    with pytest.raises(TritonGaveUpError, match="stopping"):
        client.infer_with_retry(_images(1), started + 600, stopping, max_backoff_s=60)
    assert time.monotonic() - started < 2.0


def test_a_model_that_does_not_batch_is_refused() -> None:
    client = TritonClient("m", OUTPUTS, lambda: HandlerTransport(_echo, max_batch=0))
    with pytest.raises(TritonRequestError, match="does not batch"):
        client.infer(_images(1))


# -- the real transports against the real Triton -----------------------------------------------------
@pytest.fixture(params=["grpc", "http"])
def real_url(request: pytest.FixtureRequest, triton_url: str) -> tuple[str, TritonProtocol]:
    if request.param == "grpc":
        return triton_url, "grpc"
    return str(request.getfixturevalue("triton_http_url")), "http"


@pytest.mark.stack
def test_the_real_server_answers_and_its_errors_are_sorted(real_url: tuple[str, TritonProtocol],
                                                           photos: Path) -> None:
    url, protocol = real_url
    coffee = photo_to_model_input((photos / "coffee.png").read_bytes())
    images = np.stack([coffee] * 20)  # more than meal_analyzer's max_batch_size (16)
    client = TritonClient("meal_analyzer", OUTPUTS, transport_for(url, protocol))
    try:
        assert client.ready()
        result = client.infer(images)
        assert (result.model_name, result.model_version) == ("meal_analyzer", "1")
        assert {name: a.shape for name, a in result.outputs.items()} == {
            name: (20, width) for name, width in analysis.OUTPUT_WIDTHS.items()}
        np.testing.assert_allclose(result.outputs["dish_probs"], result.outputs["dish_probs"][:1].repeat(20, 0),
                                   atol=1e-6)
        with pytest.raises(TritonRequestError, match="unexpected shape"):
            client.infer(np.zeros((1, 10, 10, 3), np.uint8))
    finally:
        client.close()
    unknown = TritonClient("no_such_model", OUTPUTS, transport_for(url, protocol))
    with pytest.raises(TritonUnavailableError, match="no_such_model"):
        unknown.infer(images[:1])
    assert not unknown.ready()
    nobody = TritonClient("meal_analyzer", OUTPUTS, transport_for(f"127.0.0.1:{free_port()}", protocol))
    with pytest.raises(TritonUnavailableError):
        nobody.infer(images[:1], timeout_s=5)
    assert not nobody.ready()
