"""The food / report / other gate: a torchvision MobileNetV3-Small from its FP16 GGUF → a standalone ONNX graph.

The weights ship in npm `@qvac/classification-ggml` (Apache-2.0), fine-tuned to tell meal photos from photos of
lab reports and everything else. The GGUF holds torchvision's state-dict names and, as metadata, the class
labels, normalisation and BatchNorm epsilon; those are read, not assumed.

Graph: `input` float32 [N, 3, 224, 224], RGB 0–255 (ImageNet mean/std normalisation is inside) →
`probs` float32 [N, 3] in the order of the labels (`class_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from gguf import GGUFReader

from inference_consumer.models.errors import ConversionError
from inference_consumer.models.onnx_graph import (
    IMAGE_INPUT,
    PROBS_OUTPUT,
    GraphBuilder,
    Weights,
    fold_batch_norm,
    image_input,
    probs_output,
    save,
)

Activation = Literal["relu", "hardswish"]


@dataclass(frozen=True)
class _Block:
    """One inverted-residual block of torchvision's mobilenet_v3_small configuration."""

    inputs: int
    kernel: int
    expanded: int
    outputs: int
    squeeze_excite: bool
    activation: Activation
    stride: int


_SMALL = (
    _Block(16, 3, 16, 16, True, "relu", 2), _Block(16, 3, 72, 24, False, "relu", 2),
    _Block(24, 3, 88, 24, False, "relu", 1), _Block(24, 5, 96, 40, True, "hardswish", 2),
    _Block(40, 5, 240, 40, True, "hardswish", 1), _Block(40, 5, 240, 40, True, "hardswish", 1),
    _Block(40, 5, 120, 48, True, "hardswish", 1), _Block(48, 5, 144, 48, True, "hardswish", 1),
    _Block(48, 5, 288, 96, True, "hardswish", 2), _Block(96, 5, 576, 96, True, "hardswish", 1),
    _Block(96, 5, 576, 96, True, "hardswish", 1),
)


class _GgufWeights:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader = GGUFReader(path)
        # GGUF stores FP16; the graph computes in FP32 like the package's own runtime.
        self._tensors = {t.name: np.asarray(t.data, dtype=np.float32) for t in self._reader.tensors}

    def __getitem__(self, name: str) -> Weights:
        try:
            return self._tensors[name]
        except KeyError as err:
            raise ConversionError(f"{self.path}: no tensor {name} (not a torchvision MobileNetV3-Small?)") from err

    def metadata(self, key: str) -> str | float | int:
        field = self._reader.fields.get(key)
        if field is None:
            raise ConversionError(f"{self.path}: no metadata field {key}")
        value: str | float | int = field.contents()
        return value

    def number(self, key: str) -> float:
        value = self.metadata(key)
        if isinstance(value, str):
            raise ConversionError(f"{self.path}: metadata {key} is {value!r}, expected a number")
        return float(value)


def class_labels(gguf_path: Path) -> list[str]:
    """The labels in output order, from the file's `mobilenet.class_<i>` metadata."""
    weights = _GgufWeights(gguf_path)
    return [str(weights.metadata(f"mobilenet.class_{i}")) for i in range(int(weights.number("mobilenet.num_classes")))]


def convert(gguf_path: Path, onnx_path: Path) -> Path:
    """Write the ONNX graph for the GGUF MobileNetV3-Small in `gguf_path`; returns `onnx_path`."""
    w = _GgufWeights(gguf_path)
    if w.metadata("mobilenet.architecture") != "mobilenetv3_small":
        raise ConversionError(f"{gguf_path}: mobilenet.architecture is {w.metadata('mobilenet.architecture')!r}, "
                              "expected 'mobilenetv3_small'")
    if int(w.number("mobilenet.image_size")) != 224:
        raise ConversionError(f"{gguf_path}: mobilenet.image_size is {w.metadata('mobilenet.image_size')}, "
                              "expected 224")
    eps = w.number("mobilenet.bn_eps")
    classes = int(w.number("mobilenet.num_classes"))
    g = GraphBuilder()

    def conv_bn(x: str, key: str, stride: int, groups: int = 1, activation: Activation | None = None) -> str:
        weight = w[f"{key}.0.weight"]
        kernel = weight.shape[-1]
        bn = f"{key}.1"
        weight, bias = fold_batch_norm(weight, w[f"{bn}.weight"], w[f"{bn}.bias"], w[f"{bn}.running_mean"],
                                       w[f"{bn}.running_var"], eps)
        y = g.conv(x, weight, bias, stride, [(kernel - 1) // 2] * 4, groups)
        if activation == "relu":
            return g.op("Relu", [y])
        if activation == "hardswish":
            return g.op("HardSwish", [y])
        return y

    def squeeze_excite(x: str, key: str) -> str:
        pooled = g.op("GlobalAveragePool", [x])
        hidden = g.op("Relu", [g.op("Conv", [pooled, g.const(w[f"{key}.fc1.weight"]), g.const(w[f"{key}.fc1.bias"])],
                                    kernel_shape=[1, 1])])
        scale = g.op("Conv", [hidden, g.const(w[f"{key}.fc2.weight"]), g.const(w[f"{key}.fc2.bias"])],
                     kernel_shape=[1, 1])
        # torchvision's SE uses hardsigmoid = relu6(x + 3) / 6, which is ONNX HardSigmoid(alpha=1/6, beta=0.5).
        return g.op("Mul", [x, g.op("HardSigmoid", [scale], alpha=1 / 6, beta=0.5)])

    mean = [w.number(f"mobilenet.mean_{c}") for c in "rgb"]
    std = [w.number(f"mobilenet.std_{c}") for c in "rgb"]
    # Inputs are 0–255; the mean/std are for 0–1 pixels.
    x = g.op("Div", [g.op("Sub", [IMAGE_INPUT, g.const(np.reshape(mean, (1, 3, 1, 1)) * 255)]),
                     g.const(np.reshape(std, (1, 3, 1, 1)) * 255)])
    x = conv_bn(x, "features.0", 2, activation="hardswish")
    for index, block in enumerate(_SMALL, start=1):
        key, part, shortcut = f"features.{index}.block", 0, x
        if block.expanded != block.inputs:
            x = conv_bn(x, f"{key}.{part}", 1, activation=block.activation)
            part += 1
        x = conv_bn(x, f"{key}.{part}", block.stride, groups=block.expanded, activation=block.activation)
        part += 1
        if block.squeeze_excite:
            x = squeeze_excite(x, f"{key}.{part}")
            part += 1
        x = conv_bn(x, f"{key}.{part}", 1)
        if block.stride == 1 and block.inputs == block.outputs:
            x = g.op("Add", [x, shortcut])
    x = conv_bn(x, "features.12", 1, activation="hardswish")
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])], axis=1)
    x = g.op("HardSwish", [g.op("Gemm", [x, g.const(w["classifier.0.weight"]), g.const(w["classifier.0.bias"])],
                                transB=1)])
    # classifier.2 is Dropout: nothing at inference.
    logits = g.op("Gemm", [x, g.const(w["classifier.3.weight"]), g.const(w["classifier.3.bias"])], transB=1)
    g.op("Softmax", [logits], output=PROBS_OUTPUT, axis=1)
    model = g.model("mobilenet_v3_small_food_report_other", [image_input()], [probs_output(classes)],
                    doc="torchvision MobileNetV3-Small fine-tuned to " + "/".join(class_labels(gguf_path)) +
                        " (@qvac/classification-ggml, Apache-2.0); input RGB 0-255 NCHW, output softmax probabilities.")
    return save(model, onnx_path)
