"""Class labels: the ImageNet-1k list shipped beside the classifier, and the food classes we name dishes by.

ImageNet-1k's food synsets are 923–969 (`plate` = a main course served on a plate … `eggnog`), less 958 (`hay`,
fodder), plus 987 (`corn`) and 998 (`ear`, an ear of corn). `plate` and `cup` are food synsets in WordNet (a
served main course; a drink served in a cup), and their photos show food, so they stay. Summed, these 48
probabilities are the "ImageNet food score"; renormalised, they are the dish distribution.
"""

from __future__ import annotations

import re

IMAGENET_CLASSES = 1000
IMAGENET_FOOD_CLASS_IDS: tuple[int, ...] = (*(i for i in range(923, 970) if i != 958), 987, 998)
#: The gate's classes, in its output order (the GGUF's metadata must agree).
GATE_LABELS: tuple[str, ...] = ("food", "report", "other")

_ENTRY = re.compile(r"""(\d+)\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")""")
# A label too long for one line is written as 'first part ' +\n 'second part'.
_CONTINUATION = re.compile(r"""(['"])\s*\+\s*\1""")


def parse_imagenet_classes_js(text: str) -> list[str]:
    """The 1000 labels from TF.js' `imagenet_classes.js` (`export const IMAGENET_CLASSES = {0: 'tench, …', …}`)."""
    body = _CONTINUATION.sub("", text[text.index("{"):])
    labels: dict[int, str] = {}
    for match in _ENTRY.finditer(body):
        raw = match.group(2) if match.group(2) is not None else match.group(3)
        labels[int(match.group(1))] = re.sub(r"\\(.)", r"\1", raw)
    if sorted(labels) != list(range(IMAGENET_CLASSES)):
        missing = sorted(set(range(IMAGENET_CLASSES)) - set(labels))[:5]
        raise ValueError(f"imagenet_classes.js: expected labels 0–{IMAGENET_CLASSES - 1}, "
                         f"found {len(labels)} (missing e.g. {missing})")
    return [labels[i] for i in range(IMAGENET_CLASSES)]


def short_label(imagenet_label: str) -> str:
    """The first synonym: 'hotdog, hot dog, red hot' → 'hotdog'."""
    return imagenet_label.split(",")[0].strip()


def dish_labels(imagenet_labels: list[str]) -> list[str]:
    """Short labels of the food classes, in dish-output order."""
    return [short_label(imagenet_labels[i]) for i in IMAGENET_FOOD_CLASS_IDS]
