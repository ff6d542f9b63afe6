"""The three Triton model repositories that serve `meal_analyzer`, and how the build fills them.

Each variant's config.pbtxt, model.py and label files are committed in `inference_consumer/<repository>/`;
the .onnx files are not: `write` copies the converted graphs into each model's version folder 1/.

  local (model_repository):      python backend + onnxruntime on the CPU; what the local stack's Triton (the
                                 pip-bundled server, python backend only) serves.
  prod  (model_repository_prod): for a full Triton (NVIDIA's container): onnxruntime-backend models chained by
                                 an ensemble; cannot run here, checked by tests instead.
  gpu   (model_repository_gpu):  python backend + PyTorch on the GPU, tensors through DLPack.

All three expose the same `meal_analyzer` inputs and outputs (see `glue`); a client cannot tell them apart.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from inference_consumer.models.errors import ModelBuildError

PACKAGE_DIR = Path(__file__).resolve().parents[1]
VERSION = "1"
#: The graphs the build makes, by name (`<name>.onnx` in the build's output folder).
GRAPHS = ("meal_preprocess", "food_gate", "dish_classifier", "meal_postprocess")
_GENERATED_SUFFIXES = (".onnx",)
_NEVER_COPIED = {"__pycache__"}


@dataclass(frozen=True)
class Variant:
    """One repository layout: which models the build owns in it and which graph files each one's 1/ gets."""

    name: str
    template: Path
    #: model name → {file name in its version folder: graph name}
    weights: dict[str, dict[str, str]]
    description: str


_BESIDE_MODEL_PY = {f"{graph}.onnx": graph for graph in GRAPHS}

LOCAL = Variant("local", PACKAGE_DIR / "model_repository", {"meal_analyzer": _BESIDE_MODEL_PY},
                "python backend, onnxruntime on the CPU (local stack)")
PROD = Variant("prod", PACKAGE_DIR / "model_repository_prod",
               {"meal_analyzer": {}, **{graph: {"model.onnx": graph} for graph in GRAPHS}},
               "onnxruntime backend + ensemble (full Triton, production)")
GPU = Variant("gpu", PACKAGE_DIR / "model_repository_gpu", {"meal_analyzer": _BESIDE_MODEL_PY},
              "python backend, PyTorch on the GPU via DLPack")
VARIANTS = {v.name: v for v in (LOCAL, PROD, GPU)}


def read_config(path: Path) -> model_config_pb2.ModelConfig:
    """Parse a config.pbtxt with Triton's own schema; ModelBuildError naming the file if it does not parse."""
    try:
        return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    except (OSError, text_format.ParseError) as err:
        raise ModelBuildError(f"{path}: not a valid Triton model config: {err}") from err


def write(variant: Variant, target: Path, graphs: dict[str, Path]) -> list[Path]:
    """Fill `target` with the variant's models: committed files (when `target` is elsewhere) and graph files.

    Other models already in `target` (such as the local `placeholder`) are left alone. Returns the files written.
    """
    written: list[Path] = []
    for model, files in variant.weights.items():
        source, destination = variant.template / model, target / model
        if not (source / "config.pbtxt").is_file():
            raise ModelBuildError(f"{variant.name} repository: {source / 'config.pbtxt'} is missing")
        if source.resolve() != destination.resolve():
            written += _copy_committed(source, destination)
        # An ensemble's version folder stays empty, but must exist.
        (destination / VERSION).mkdir(parents=True, exist_ok=True)
        for file_name, graph in files.items():
            written += _place(graphs[graph], destination / VERSION / file_name)
    return written


def _copy_committed(source: Path, destination: Path) -> list[Path]:
    copied = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir() or path.suffix in _GENERATED_SUFFIXES or _NEVER_COPIED & set(relative.parts):
            continue
        copied += _place(path, destination / relative)
    return copied


def _place(source: Path, destination: Path) -> list[Path]:
    """Copy unless identical (an unchanged file keeps its mtime, so a polling Triton does not reload)."""
    if destination.is_file() and filecmp.cmp(source, destination, shallow=False):
        return []
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    shutil.copyfile(source, partial)
    partial.replace(destination)
    return [destination]


@dataclass(frozen=True)
class ModelEntry:
    """One model of a repository, as `vitalstream models list` shows it."""

    name: str
    runs_on: str
    inputs: list[str]
    outputs: list[str]
    missing: list[str]

    @property
    def ready(self) -> bool:
        return not self.missing


def _describe(tensor: model_config_pb2.ModelInput | model_config_pb2.ModelOutput) -> str:
    data_type = model_config_pb2.DataType.Name(tensor.data_type).removeprefix("TYPE_")
    return f"{tensor.name} {data_type} [{', '.join(map(str, tensor.dims))}]"


def list_models(repository: Path, variant: Variant | None = None) -> list[ModelEntry]:
    """Every model folder of `repository` (config parsed) and the files it still lacks to be served."""
    entries = []
    for config_path in sorted(repository.glob("*/config.pbtxt")):
        config = read_config(config_path)
        folder = config_path.parent
        version = folder / VERSION
        needed = [f"{VERSION}/"] if config.platform == "ensemble" else []
        if config.backend == "python":
            needed.append(f"{VERSION}/model.py")
        if config.backend == "onnxruntime":
            needed.append(f"{VERSION}/model.onnx")
        if variant is not None:
            needed += [f"{VERSION}/{name}" for name in variant.weights.get(folder.name, {})]
        needed += [o.label_filename for o in config.output if o.label_filename]
        missing = [n for n in dict.fromkeys(needed)
                   if not (version.is_dir() if n == f"{VERSION}/" else (folder / n).is_file())]
        entries.append(ModelEntry(folder.name, config.platform or config.backend,
                                  [_describe(i) for i in config.input], [_describe(o) for o in config.output],
                                  missing))
    return entries
