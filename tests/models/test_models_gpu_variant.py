"""The GPU variant (PyTorch inside the python backend, DLPack) served by the real Triton.

Runs only where torch is installed in this environment (the python-backend stub uses it too); not a project
dependency. Without a GPU the instance group is switched to KIND_CPU, which runs the same code on torch's CPU.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient

from inference_consumer.models import glue, repository
from inference_consumer.models.testing import BuiltModels
from stack.triton import Triton
from vitalstream.config import Settings

torch = pytest.importorskip("torch", reason="the GPU variant needs torch in this environment")

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def gpu_triton(built_models: BuiltModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triton]:
    served = tmp_path_factory.mktemp("gpu") / "repository"
    shutil.copytree(built_models.gpu, served)
    if not torch.cuda.is_available():
        config = served / "meal_analyzer" / "config.pbtxt"
        config.write_text(config.read_text().replace("KIND_GPU", "KIND_CPU"))
    server = Triton(Settings(stack_dir=served.parent / "stack", model_repository=served,
                             triton_http_port=_free_port(), triton_grpc_port=_free_port(),
                             triton_metrics_port=_free_port()))
    server.install()
    server.start()
    server.wait_ready()
    yield server
    server.stop()


def test_gpu_variant_answers_like_the_production_graphs(gpu_triton: Triton, built_models: BuiltModels) -> None:
    names = sorted(p.name for p in built_models.photos.iterdir())
    images = np.stack([built_models.photo(n) for n in names])
    client = httpclient.InferenceServerClient(f"127.0.0.1:{gpu_triton.settings.triton_http_port}")
    try:
        image = httpclient.InferInput("image", list(images.shape), "UINT8")
        image.set_data_from_numpy(images)
        served = client.infer("meal_analyzer", [image])
    finally:
        client.close()
    graphs = {n: ort.InferenceSession(str(built_models.prod / n / repository.VERSION / "model.onnx"),
                                      providers=["CPUExecutionProvider"]) for n in repository.GRAPHS}
    (pixels,) = graphs["meal_preprocess"].run(None, {"image": images})
    feeds = {"gate_raw": graphs["food_gate"].run(None, {"input": pixels})[0],
             "imagenet_probs": graphs["dish_classifier"].run(None, {"input": pixels})[0]}
    expected = dict(zip(glue.OUTPUT_WIDTHS, graphs["meal_postprocess"].run(list(glue.OUTPUT_WIDTHS), feeds),
                        strict=True))
    for name in glue.OUTPUT_WIDTHS:
        # cuDNN's convolutions round differently from onnxruntime's; probabilities agree to 1e-4.
        np.testing.assert_allclose(served.as_numpy(name), expected[name], atol=1e-4, err_msg=name)
