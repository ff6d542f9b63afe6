"""A thin client for one Triton model that takes a batch of photos: gRPC or HTTP, or a handler in tests.

The seam is the transport (as httpx's MockTransport): `TritonClient(..., transport=lambda: HandlerTransport(fn))`
answers from a function, with no server and nothing patched. Real transports turn tritonclient's many error
shapes into two: TritonUnavailableError (worth retrying: no connection, shutting down, model not loaded, timeout)
and TritonRequestError (the request itself was refused; retrying cannot help).

A client is used by one thread: tritonclient's HTTP client runs on gevent, which must stay in the thread
that made it. After TritonUnavailableError the connection is dropped and the next call opens a new one, so a
restarted server is reached at once rather than after gRPC's own reconnect back-off (up to two minutes).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

TritonProtocol = Literal["grpc", "http"]
IMAGE_INPUT = "image"
#: Longest a single request may take over HTTP (gRPC gets the caller's timeout per call).
HTTP_NETWORK_TIMEOUT_S = 60.0
#: gRPC status codes (and HTTP statuses) that mean this request is wrong, not that the server is unwell.
_REQUEST_ERRORS = {"StatusCode.INVALID_ARGUMENT", "StatusCode.OUT_OF_RANGE", "StatusCode.UNIMPLEMENTED",
                   "400", "413", "422"}


class TritonUnavailableError(RuntimeError):
    """Triton cannot answer now; the same request may succeed later."""


class TritonRequestError(RuntimeError):
    """Triton refused the request itself (shape, type, batch size); sending it again gives the same answer."""


class TritonGaveUpError(RuntimeError):
    """Retries stopped: the deadline passed or the caller is stopping. `__cause__` is the last error."""


@dataclass(frozen=True)
class InferResult:
    model_name: str
    model_version: str
    #: output name → [N, width] array
    outputs: dict[str, NDArray[np.float32]]
    #: Wall time of the request(s) that produced it.
    seconds: float = 0.0


class Transport(Protocol):
    def infer(self, model: str, images: NDArray[np.uint8], outputs: Sequence[str],
              timeout_s: float) -> InferResult: ...

    def max_batch_size(self, model: str) -> int: ...

    def ready(self, model: str) -> bool: ...

    def close(self) -> None: ...


#: `handler(model, images) -> InferResult`; may raise TritonUnavailableError or TritonRequestError.
Handler = Callable[[str, NDArray[np.uint8]], InferResult]


class HandlerTransport:
    """Answers from a function: for tests of the logic around Triton."""

    def __init__(self, handler: Handler, max_batch: int = 16, ready: Callable[[], bool] = lambda: True) -> None:
        self._handler = handler
        self._max_batch = max_batch
        self._ready = ready

    def infer(self, model: str, images: NDArray[np.uint8], outputs: Sequence[str], timeout_s: float) -> InferResult:
        return self._handler(model, images)

    def max_batch_size(self, model: str) -> int:
        return self._max_batch

    def ready(self, model: str) -> bool:
        return self._ready()

    def close(self) -> None:
        pass


def _classify(error: Exception, what: str) -> Exception:
    status = getattr(error, "status", None)
    code = str(status()) if callable(status) else None
    message = getattr(error, "message", None)
    text = message() if callable(message) else str(error)
    if code in _REQUEST_ERRORS:
        return TritonRequestError(f"{what}: {code}: {text}")
    return TritonUnavailableError(f"{what}: {code or type(error).__name__}: {text}")


class GrpcTransport:
    def __init__(self, url: str) -> None:
        import tritonclient.grpc as grpcclient

        self._grpc = grpcclient
        self._client = grpcclient.InferenceServerClient(url)
        self._url = url

    def infer(self, model: str, images: NDArray[np.uint8], outputs: Sequence[str], timeout_s: float) -> InferResult:
        image = self._grpc.InferInput(IMAGE_INPUT, list(images.shape), "UINT8")
        image.set_data_from_numpy(images)
        try:
            result = self._client.infer(model, [image], outputs=[self._grpc.InferRequestedOutput(n) for n in outputs],
                                        client_timeout=timeout_s)
        except Exception as err:
            raise _classify(err, f"triton {self._url} (grpc) model {model}") from err
        response = result.get_response()
        return InferResult(response.model_name, response.model_version, {n: result.as_numpy(n) for n in outputs})

    def max_batch_size(self, model: str) -> int:
        try:
            return int(self._client.get_model_config(model, client_timeout=10.0).config.max_batch_size)
        except Exception as err:
            raise _classify(err, f"triton {self._url} (grpc) config of {model}") from err

    def ready(self, model: str) -> bool:
        try:
            return bool(self._client.is_server_ready(client_timeout=5.0)
                        and self._client.is_model_ready(model, client_timeout=5.0))
        except Exception:
            return False

    def close(self) -> None:
        self._client.close()


class HttpTransport:
    def __init__(self, url: str) -> None:
        import tritonclient.http as httpclient

        self._http = httpclient
        self._client = httpclient.InferenceServerClient(url, connection_timeout=10.0,
                                                        network_timeout=HTTP_NETWORK_TIMEOUT_S)
        self._url = url

    def infer(self, model: str, images: NDArray[np.uint8], outputs: Sequence[str], timeout_s: float) -> InferResult:
        image = self._http.InferInput(IMAGE_INPUT, list(images.shape), "UINT8")
        image.set_data_from_numpy(images, binary_data=True)
        requested = [self._http.InferRequestedOutput(n, binary_data=True) for n in outputs]
        try:
            result = self._client.infer(model, [image], outputs=requested)
        except Exception as err:
            raise _classify(err, f"triton {self._url} (http) model {model}") from err
        response = result.get_response()
        return InferResult(str(response["model_name"]), str(response["model_version"]),
                           {n: result.as_numpy(n) for n in outputs})

    def max_batch_size(self, model: str) -> int:
        try:
            return int(self._client.get_model_config(model).get("max_batch_size", 0))
        except Exception as err:
            raise _classify(err, f"triton {self._url} (http) config of {model}") from err

    def ready(self, model: str) -> bool:
        try:
            return bool(self._client.is_server_ready() and self._client.is_model_ready(model))
        except Exception:
            return False

    def close(self) -> None:
        self._client.close()


def transport_for(url: str, protocol: TritonProtocol) -> Callable[[], Transport]:
    """A factory of real transports to `url` (host:port) over `protocol`."""
    if protocol == "grpc":
        return lambda: GrpcTransport(url)
    if protocol == "http":
        return lambda: HttpTransport(url)
    raise ValueError(f"triton_protocol must be grpc or http, got {protocol!r}")


class TritonClient:
    """Sends batches of photos to one model; splits a batch larger than the model's max_batch_size."""

    def __init__(self, model: str, outputs: Sequence[str], transport: Callable[[], Transport]) -> None:
        self.model = model
        self.outputs = list(outputs)
        self._new_transport = transport
        self._transport: Transport | None = None
        self._max_batch: int | None = None

    def _connected(self) -> Transport:
        if self._transport is None:
            self._transport = self._new_transport()
        return self._transport

    def _drop(self) -> None:
        if self._transport is not None:
            # A broken connection may fail to close; it is discarded either way.
            with contextlib.suppress(Exception):
                self._transport.close()
            self._transport = None
            self._max_batch = None

    def infer(self, images: NDArray[np.uint8], timeout_s: float = HTTP_NETWORK_TIMEOUT_S) -> InferResult:
        """One attempt. Outputs of every chunk are joined in order."""
        started = time.perf_counter()
        try:
            transport = self._connected()
            if self._max_batch is None:
                self._max_batch = transport.max_batch_size(self.model)
                if self._max_batch < 1:
                    raise TritonRequestError(f"model {self.model} does not batch (max_batch_size 0); "
                                             "it must take [N, 224, 224, 3]")
            chunks = [transport.infer(self.model, images[start:start + self._max_batch], self.outputs, timeout_s)
                      for start in range(0, len(images), self._max_batch)]
        except TritonUnavailableError:
            self._drop()
            raise
        first = chunks[0]
        outputs = first.outputs if len(chunks) == 1 else {
            n: np.concatenate([c.outputs[n] for c in chunks]) for n in self.outputs}
        return InferResult(first.model_name, first.model_version, outputs, time.perf_counter() - started)

    def ready(self) -> bool:
        ready = self._connected().ready(self.model)
        if not ready:
            self._drop()
        return ready

    def infer_with_retry(self, images: NDArray[np.uint8], give_up_at: float, stopping: threading.Event,
                         on_retry: Callable[[Exception, float], None] = lambda error, wait_s: None,
                         clock: Callable[[], float] = time.monotonic, max_backoff_s: float = 5.0) -> InferResult:
        """Attempt until an answer, with exponential back-off while Triton is unavailable.

        Gives up (TritonGaveUpError) when `clock()` reaches `give_up_at` or `stopping` is set; a back-off sleep
        ends early when `stopping` is set. TritonRequestError is raised at once. `on_retry(error, wait_s)` runs
        before each back-off.
        """
        backoff = wait_exponential(multiplier=0.1, min=0.1, max=max_backoff_s)

        def wait(state: RetryCallState) -> float:
            return max(0.0, min(backoff(state), give_up_at - clock()))

        def stop(state: RetryCallState) -> bool:
            return stopping.is_set() or clock() >= give_up_at

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            on_retry(error if isinstance(error, Exception) else TritonUnavailableError("unknown"),
                     state.upcoming_sleep)

        def sleep(seconds: float) -> None:
            stopping.wait(seconds)

        def attempt() -> InferResult:
            return self.infer(images, timeout_s=max(0.1, min(HTTP_NETWORK_TIMEOUT_S, give_up_at - clock())))

        retrying = Retrying(retry=retry_if_exception_type(TritonUnavailableError), wait=wait, stop=stop,
                            before_sleep=before_sleep, sleep=sleep, reraise=True)
        try:
            return retrying(attempt)
        except TritonUnavailableError as err:
            raise TritonGaveUpError(f"gave up on triton model {self.model}: "
                         f"{'stopping' if stopping.is_set() else 'deadline passed'}; last error: {err}") from err

    def close(self) -> None:
        self._drop()
