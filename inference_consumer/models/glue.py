"""The two small graphs around the networks, so every variant of `meal_analyzer` computes the same thing.

  meal_preprocess:  image uint8 [N, 224, 224, 3] (RGB, as a client sends it) → input float32 [N, 3, 224, 224]
  meal_postprocess: gate probs [N, 3] + ImageNet probs [N, 1000] → the meal_analyzer outputs:
      food_prob            [N, 1]   the gate's P(food)
      gate_probs           [N, 3]   food, report, other
      dish_probs           [N, 48]  the ImageNet food classes renormalised to sum to 1 (which dish, if food)
      food_score_imagenet  [N, 1]   how much of the ImageNet probability is on food classes at all

Production's Triton runs them with the onnxruntime backend inside an ensemble; the local python-backend and GPU
models run the very same files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from inference_consumer.models.labels import GATE_LABELS, IMAGENET_CLASSES, IMAGENET_FOOD_CLASS_IDS
from inference_consumer.models.onnx_graph import IMAGE_INPUT, IMAGE_SIZE_PX, GraphBuilder, image_input, save

#: The client-facing input: one photo, already cropped to the networks' size (see `preprocess`).
IMAGE = "image"
#: Postprocess inputs: the two networks' `probs`, renamed so one graph can take both.
GATE_RAW = "gate_raw"
IMAGENET_PROBS = "imagenet_probs"
FOOD_PROB = "food_prob"
GATE_PROBS = "gate_probs"
DISH_PROBS = "dish_probs"
FOOD_SCORE_IMAGENET = "food_score_imagenet"
#: Output name → its width per image; the order every repository variant declares them in.
OUTPUT_WIDTHS: dict[str, int] = {FOOD_PROB: 1, GATE_PROBS: len(GATE_LABELS), DISH_PROBS: len(IMAGENET_FOOD_CLASS_IDS),
                                 FOOD_SCORE_IMAGENET: 1}
#: Guards the renormalisation of a photo with (numerically) no food probability at all.
_MIN_FOOD_SCORE = 1e-12


def preprocess_model() -> onnx.ModelProto:
    g = GraphBuilder()
    pixels = g.op("Cast", [IMAGE], to=TensorProto.FLOAT)
    g.op("Transpose", [pixels], output=IMAGE_INPUT, perm=[0, 3, 1, 2])
    return g.model("meal_preprocess",
                   [helper.make_tensor_value_info(IMAGE, TensorProto.UINT8, ["N", IMAGE_SIZE_PX, IMAGE_SIZE_PX, 3])],
                   [image_input()], doc="RGB uint8 NHWC photo -> float32 NCHW, 0-255 (the networks scale it).")


def postprocess_model() -> onnx.ModelProto:
    g = GraphBuilder()
    food_axis = g.const([1], dtype=np.int64)
    g.op("Slice", [GATE_RAW, g.const([GATE_LABELS.index("food")], dtype=np.int64),
                   g.const([GATE_LABELS.index("food") + 1], dtype=np.int64), food_axis], output=FOOD_PROB)
    g.op("Identity", [GATE_RAW], output=GATE_PROBS)
    food = g.op("Gather", [IMAGENET_PROBS, g.const(IMAGENET_FOOD_CLASS_IDS, dtype=np.int64)], axis=1)
    score = g.op("ReduceSum", [food, food_axis], output=FOOD_SCORE_IMAGENET, keepdims=1)
    g.op("Div", [food, g.op("Max", [score, g.const(_MIN_FOOD_SCORE)])], output=DISH_PROBS)
    return g.model(
        "meal_postprocess",
        [helper.make_tensor_value_info(GATE_RAW, TensorProto.FLOAT, ["N", len(GATE_LABELS)]),
         helper.make_tensor_value_info(IMAGENET_PROBS, TensorProto.FLOAT, ["N", IMAGENET_CLASSES])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", width]) for name, width in OUTPUT_WIDTHS.items()],
        doc="Gate and ImageNet probabilities -> food_prob, gate_probs, dish_probs (renormalised over the ImageNet "
            "food classes) and food_score_imagenet.")


def write(directory: Path) -> dict[str, Path]:
    """Write both graphs as `<directory>/meal_preprocess.onnx` and `meal_postprocess.onnx`."""
    return {"meal_preprocess": save(preprocess_model(), directory / "meal_preprocess.onnx"),
            "meal_postprocess": save(postprocess_model(), directory / "meal_postprocess.onnx")}
