"""meal_analyzer for a Triton with a GPU (python backend, PyTorch inside, tensors through DLPack).

Runs the same four ONNX graphs as the local and production variants (meal_preprocess → food_gate and
dish_classifier → meal_postprocess), read with `onnx` and executed node by node with torch ops on the
instance's device. Only the ~20 operators those graphs use are implemented; any other fails at load time.
DLPack rather than numpy moves the tensors, so the input never leaves the device Triton put it on, and the
backend's numpy path (broken with numpy ≥ 2 in Triton 24.10) is not used. `vitalstream models build` puts the
.onnx files beside this file.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import torch
import torch.nn.functional as F  # noqa: N812 (torch's own convention)
import triton_python_backend_utils as pb_utils
from onnx import TensorProto, helper, numpy_helper
from torch import Tensor
from torch.utils.dlpack import from_dlpack, to_dlpack

GRAPHS = ("meal_preprocess", "food_gate", "dish_classifier", "meal_postprocess")

Op = Callable[[list[Tensor], dict[str, Any]], Tensor]


def _conv(inputs: list[Tensor], attrs: dict[str, Any]) -> Tensor:
    x, weight, bias = inputs
    top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
    if (top, left) != (bottom, right):  # TF "same" padding of stride-2 convs: extra pixel bottom/right only
        x, padding = F.pad(x, (left, right, top, bottom)), (0, 0)
    else:
        padding = (top, left)
    return F.conv2d(x, weight, bias, stride=tuple(attrs.get("strides", [1, 1])), padding=padding,
                    groups=attrs.get("group", 1))


def _gemm(inputs: list[Tensor], attrs: dict[str, Any]) -> Tensor:
    a, b, c = inputs
    if attrs.get("transA", 0):
        a = a.t()
    if attrs.get("transB", 0):
        b = b.t()
    return attrs.get("alpha", 1.0) * (a @ b) + attrs.get("beta", 1.0) * c


def _slice(inputs: list[Tensor], attrs: dict[str, Any]) -> Tensor:
    x, starts, ends, axes = inputs
    index = [slice(None)] * x.dim()
    for start, end, axis in zip(starts.tolist(), ends.tolist(), axes.tolist(), strict=True):
        index[axis] = slice(start, end)
    return x[tuple(index)]


def _cast(inputs: list[Tensor], attrs: dict[str, Any]) -> Tensor:
    if attrs["to"] != TensorProto.FLOAT:
        raise ValueError(f"Cast to ONNX type {attrs['to']} is not supported (only FLOAT)")
    return inputs[0].float()


OPS: dict[str, Op] = {
    "Add": lambda i, a: operator.add(*i),
    "Sub": lambda i, a: operator.sub(*i),
    "Mul": lambda i, a: operator.mul(*i),
    "Div": lambda i, a: operator.truediv(*i),
    "Max": lambda i, a: torch.maximum(*i),
    "Identity": lambda i, a: i[0],
    "Cast": _cast,
    "Transpose": lambda i, a: i[0].permute(*a["perm"]).contiguous(),
    "Clip": lambda i, a: torch.minimum(torch.maximum(i[0], i[1]), i[2]),
    "Relu": lambda i, a: F.relu(i[0]),
    "HardSwish": lambda i, a: F.hardswish(i[0]),
    "HardSigmoid": lambda i, a: torch.clamp(a.get("alpha", 0.2) * i[0] + a.get("beta", 0.5), 0.0, 1.0),
    "Conv": _conv,
    "GlobalAveragePool": lambda i, a: i[0].mean(dim=(2, 3), keepdim=True),
    "Flatten": lambda i, a: i[0].flatten(a.get("axis", 1)),
    "Gemm": _gemm,
    "Softmax": lambda i, a: torch.softmax(i[0], dim=a.get("axis", -1)),
    "Slice": _slice,
    "Gather": lambda i, a: torch.index_select(i[0], a.get("axis", 0), i[1]),
    "ReduceSum": lambda i, a: i[0].sum(dim=tuple(i[1].tolist()), keepdim=bool(a.get("keepdims", 1))),
}


class OnnxGraph:
    """One ONNX graph, its weights on `device`, run node by node (they are stored in topological order)."""

    def __init__(self, path: Path, device: torch.device) -> None:
        model = onnx.load(str(path))
        graph = model.graph
        unsupported = sorted({n.op_type for n in graph.node} - set(OPS))
        if unsupported:
            raise ValueError(f"{path.name}: operators {unsupported} are not implemented here")
        self.constants = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()).to(device)
                          for t in graph.initializer}
        self.nodes = [(OPS[n.op_type], list(n.input), n.output[0],
                       {a.name: helper.get_attribute_value(a) for a in n.attribute}) for n in graph.node]
        self.outputs = [o.name for o in graph.output]

    def __call__(self, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        values = {**self.constants, **feeds}
        for op, inputs, output, attrs in self.nodes:
            values[output] = op([values[name] for name in inputs], attrs)
        return {name: values[name] for name in self.outputs}


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        self.output_names = [output["name"] for output in config["output"]]
        gpu = args["model_instance_kind"] == "GPU" and torch.cuda.is_available()
        self.device = torch.device(f"cuda:{args['model_instance_device_id']}" if gpu else "cpu")
        here = Path(args["model_repository"]) / args["model_version"]
        missing = [name for name in GRAPHS if not (here / f"{name}.onnx").is_file()]
        if missing:
            raise pb_utils.TritonModelException(
                f"meal_analyzer: {', '.join(f'{m}.onnx' for m in missing)} missing in {here}: "
                "run `vitalstream models build`")
        self.graphs = {name: OnnxGraph(here / f"{name}.onnx", self.device) for name in GRAPHS}
        pb_utils.Logger.log_info(f"meal_analyzer on {self.device} (torch {torch.__version__})")

    def _run(self, images: Tensor) -> dict[str, Tensor]:
        with torch.inference_mode():
            pixels = self.graphs["meal_preprocess"]({"image": images})["input"]
            gate_raw = self.graphs["food_gate"]({"input": pixels})["probs"]
            imagenet_probs = self.graphs["dish_classifier"]({"input": pixels})["probs"]
            return self.graphs["meal_postprocess"]({"gate_raw": gate_raw, "imagenet_probs": imagenet_probs})

    def execute(self, requests: list[Any]) -> list[Any]:
        # Dynamic batching hands over several requests at once; their images run as one batch on the device.
        images = [from_dlpack(pb_utils.get_input_tensor_by_name(r, "image").to_dlpack()).to(self.device)
                  for r in requests]
        outputs = self._run(torch.cat(images) if len(images) > 1 else images[0])
        responses, start = [], 0
        for batch in images:
            end = start + batch.shape[0]
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor.from_dlpack(name, to_dlpack(outputs[name][start:end].contiguous()))
                for name in self.output_names]))
            start = end
        return responses

    def finalize(self) -> None:
        self.graphs = {}
