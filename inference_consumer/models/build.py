"""`vitalstream models build`: fetch (cached) → convert → check labels → write the three model repositories."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from inference_consumer.models import convert_mnv3, convert_mobilenet, fetch, glue, labels, repository
from inference_consumer.models.errors import ModelBuildError
from inference_consumer.models.fetch import FetchReport, Progress
from vitalstream.config import Settings

logger = logging.getLogger(__name__)


@dataclass
class BuildReport:
    fetch: FetchReport
    convert_s: float
    write_s: float
    graphs: dict[str, Path]
    #: variant name → the repository folder it was written to
    repositories: dict[str, Path] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)


def graphs_dir(settings: Settings) -> Path:
    return fetch.cache_dir(settings) / "onnx"


def photos_dir(settings: Settings) -> Path:
    """The real test photos fetched with the weights: meal_*, report_*, other_* (.jpg), coffee.png, chelsea.png."""
    return fetch.cache_dir(settings) / fetch.PHOTOS


def default_targets(settings: Settings) -> dict[str, Path]:
    """Where each variant goes by default: the local one where the local Triton looks (settings)."""
    return {"local": settings.model_repository, "prod": repository.PROD.template, "gpu": repository.GPU.template}


def expected_labels(settings: Settings) -> dict[str, list[str]]:
    """The label files' contents, as the fetched weights define them."""
    root = fetch.cache_dir(settings)
    imagenet = labels.parse_imagenet_classes_js((root / fetch.IMAGENET_CLASSES_JS).read_text())
    gate = convert_mnv3.class_labels(root / fetch.GATE_GGUF)
    if tuple(gate) != labels.GATE_LABELS:
        raise ModelBuildError(f"{fetch.GATE_GGUF}: gate classes are {gate}, the outputs promise {labels.GATE_LABELS}")
    return {"dish_labels.txt": labels.dish_labels(imagenet), "gate_labels.txt": gate}


def check_label_files(variant: repository.Variant, expected: dict[str, list[str]]) -> None:
    """Every committed label file of the variant lists exactly the classes the weights output, in order."""
    for path in sorted(variant.template.glob("*/*_labels.txt")):
        want = expected.get(path.name)
        if want is not None and path.read_text().splitlines() != want:
            raise ModelBuildError(f"{path}: labels differ from the weights' classes; expected {want}")


def convert_all(settings: Settings) -> dict[str, Path]:
    """Convert both networks and write the glue graphs into the cache; returns graph name → .onnx path."""
    root, out = fetch.cache_dir(settings), graphs_dir(settings)
    return {
        "dish_classifier": convert_mobilenet.convert(root / fetch.MOBILENET_H5, out / "dish_classifier.onnx"),
        "food_gate": convert_mnv3.convert(root / fetch.GATE_GGUF, out / "food_gate.onnx"),
        **glue.write(out),
    }


def ensure_local_weights(settings: Settings, progress: Progress | None = None) -> BuildReport | None:
    """Build the local variant into `settings.model_repository` if a model it declares lacks its weights.

    For the local stack's Triton before it starts: a fresh checkout has the committed configs but no .onnx, and
    Triton exits when a model fails to load. A repository without our models is left alone. Returns the build's
    report, or None when nothing was missing (a few milliseconds).
    """
    target = settings.model_repository
    declared = [model for model in repository.LOCAL.weights if (target / model / "config.pbtxt").is_file()]
    if not declared:
        return None
    entries = {e.name: e for e in repository.list_models(target, repository.LOCAL)}
    if all(entries[model].ready for model in declared):
        return None
    return build(settings, {"local": target}, progress)


def build(settings: Settings, targets: dict[str, Path] | None = None, progress: Progress | None = None) -> BuildReport:
    """Fetch what is missing, convert, and write each variant (default: all three, to `default_targets`)."""
    say = progress or (lambda message: None)
    targets = targets if targets is not None else default_targets(settings)
    unknown = set(targets) - set(repository.VARIANTS)
    if unknown:
        raise ModelBuildError(f"unknown repository variant(s) {sorted(unknown)}; known: {sorted(repository.VARIANTS)}")
    fetched = fetch.fetch(settings, progress=say)
    say("converting to ONNX")
    t0 = time.monotonic()
    graphs = convert_all(settings)
    convert_s = time.monotonic() - t0
    expected = expected_labels(settings)
    t0 = time.monotonic()
    report = BuildReport(fetched, convert_s, 0.0, graphs)
    for name, target in targets.items():
        variant = repository.VARIANTS[name]
        check_label_files(variant, expected)
        say(f"writing the {name} repository to {target}")
        report.written += repository.write(variant, target, graphs)
        report.repositories[name] = target
    report.write_s = time.monotonic() - t0
    logger.info("models: built", extra={"convert_s": round(convert_s, 2), "write_s": round(report.write_s, 2),
                                        "download_s": round(sum(fetched.seconds.values()), 2),
                                        "repositories": {k: str(v) for k, v in report.repositories.items()}})
    return report
