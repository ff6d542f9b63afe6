"""meal_analyzer for the local Triton (python backend, onnxruntime on the CPU inside).

Runs the same four ONNX graphs, in the same order, as production's ensemble of onnxruntime models
(model_repository_prod/meal_analyzer): meal_preprocess → food_gate and dish_classifier → meal_postprocess.
The .onnx files sit beside this file; `vitalstream models build` writes them (they are not committed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils
from numpy.typing import NDArray

GRAPHS = ("meal_preprocess", "food_gate", "dish_classifier", "meal_postprocess")


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.output_names = [output["name"] for output in config["output"]]
        here = Path(args["model_repository"]) / args["model_version"]
        missing = [name for name in GRAPHS if not (here / f"{name}.onnx").is_file()]
        if missing:
            raise pb_utils.TritonModelException(
                f"meal_analyzer: {', '.join(f'{m}.onnx' for m in missing)} missing in {here}: "
                "run `vitalstream models build`")
        options = ort.SessionOptions()
        # Triton already runs instances side by side; one op thread each keeps them from fighting for cores.
        options.intra_op_num_threads = int(parameters.get("intra_op_threads", "1"))
        options.inter_op_num_threads = 1
        self.sessions = {name: ort.InferenceSession(str(here / f"{name}.onnx"), options,
                                                    providers=["CPUExecutionProvider"]) for name in GRAPHS}

    def _run(self, images: NDArray[np.uint8]) -> dict[str, NDArray[np.float32]]:
        (pixels,) = self.sessions["meal_preprocess"].run(None, {"image": images})
        (gate_raw,) = self.sessions["food_gate"].run(None, {"input": pixels})
        (imagenet_probs,) = self.sessions["dish_classifier"].run(None, {"input": pixels})
        outputs = self.sessions["meal_postprocess"].run(
            self.output_names, {"gate_raw": gate_raw, "imagenet_probs": imagenet_probs})
        return dict(zip(self.output_names, outputs, strict=True))

    def execute(self, requests: list[Any]) -> list[Any]:
        # Dynamic batching hands over several requests at once; their [n, 224, 224, 3] images run as one batch.
        images = [pb_utils.get_input_tensor_by_name(r, "image").as_numpy() for r in requests]
        outputs = self._run(np.concatenate(images) if len(images) > 1 else images[0])
        responses, start = [], 0
        for batch in images:
            end = start + len(batch)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(name, np.ascontiguousarray(value[start:end])) for name, value in outputs.items()]))
            start = end
        return responses

    def finalize(self) -> None:
        self.sessions = {}
