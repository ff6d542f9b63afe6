"""A small ONNX graph builder: initialisers and nodes with generated, stable names.

Both converters build plain feed-forward graphs from numpy weights; this keeps their code to the architecture.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import ArrayLike, NDArray
from onnx import TensorProto, helper, numpy_helper

#: Weights as the converters hold them.
Weights = NDArray[np.float32]

#: ONNX IR version 8 (onnxruntime ≥ 1.10 loads it): the graphs must also run in production's Triton 24.x containers.
IR_VERSION = 8
OPSET = 14

#: Input of every image network here: RGB pixels as float, 0–255, NCHW. Networks scale them themselves.
IMAGE_INPUT = "input"
IMAGE_SIZE_PX = 224
#: Output of every classifier here: softmax probabilities, [N, classes].
PROBS_OUTPUT = "probs"


class GraphBuilder:
    """Collects initialisers and nodes; names come from a counter, so the same weights give the same file."""

    def __init__(self) -> None:
        self.initializers: list[TensorProto] = []
        self.nodes: list[onnx.NodeProto] = []
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, value: ArrayLike, prefix: str = "c", dtype: type[np.generic] = np.float32) -> str:
        """An initialiser holding `value`; returns its name."""
        name = self._name(prefix)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], output: str | None = None, **attrs: Any) -> str:
        """Append a node with one output (named `output`, or generated); returns that output's name."""
        out = output or self._name(op_type)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=self._name(f"{op_type}_node"), **attrs))
        return out

    def conv(self, x: str, weight: Weights, bias: Weights, stride: int, pads: Sequence[int],
             groups: int = 1) -> str:
        """Conv with OIHW `weight`; `pads` as ONNX orders them (top, left, bottom, right)."""
        kernel = list(weight.shape[2:])
        return self.op("Conv", [x, self.const(weight, "W"), self.const(bias, "B")], strides=[stride, stride],
                       pads=list(pads), group=groups, kernel_shape=kernel)

    def model(self, name: str, inputs: Sequence[onnx.ValueInfoProto], outputs: Sequence[onnx.ValueInfoProto],
              doc: str) -> onnx.ModelProto:
        """The checked model (ONNX's checker raises on any inconsistency)."""
        graph = helper.make_graph(self.nodes, name, list(inputs), list(outputs), self.initializers, doc_string=doc)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="vitalstream", doc_string=doc)
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model, full_check=True)
        return model


def image_input() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(IMAGE_INPUT, TensorProto.FLOAT, ["N", 3, IMAGE_SIZE_PX, IMAGE_SIZE_PX])


def probs_output(classes: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(PROBS_OUTPUT, TensorProto.FLOAT, ["N", classes])


def fold_batch_norm(weight: Weights, gamma: Weights, beta: Weights, mean: Weights, var: Weights,
                    eps: float) -> tuple[Weights, Weights]:
    """Conv weight (OIHW) and bias with an inference-mode BatchNorm after it folded in."""
    scale = gamma / np.sqrt(var + eps)
    return (weight * scale[:, None, None, None]).astype(np.float32), (beta - mean * scale).astype(np.float32)


def save(model: onnx.ModelProto, path: Path) -> Path:
    """Write atomically: Triton or a test never loads half a file (and two builds never share a partial one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    onnx.save(model, str(partial))
    partial.replace(path)
    return path
