"""The model repositories: every config parses with Triton's schema, the variants agree on meal_analyzer's I/O,
the production ensemble is wired consistently, and each ONNX graph matches the config that serves it.

Production's repository needs a full Triton (onnxruntime backend, ensembles), which cannot run here; these checks
stand in for loading it.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import onnx
import pytest
from tritonclient.grpc import model_config_pb2

from inference_consumer.models import build, repository
from inference_consumer.models.errors import ModelBuildError
from inference_consumer.models.repository import GPU, LOCAL, PROD, VARIANTS, read_config
from inference_consumer.models.testing import BuiltModels

COMMITTED_CONFIGS = sorted(p for v in VARIANTS.values() for p in v.template.glob("*/config.pbtxt"))
_ONNX_TYPES = {onnx.TensorProto.FLOAT: model_config_pb2.TYPE_FP32, onnx.TensorProto.UINT8: model_config_pb2.TYPE_UINT8}


def _io(config: model_config_pb2.ModelConfig) -> list[tuple[str, str, int, tuple[int, ...], str]]:
    return [(kind, t.name, t.data_type, tuple(t.dims), getattr(t, "label_filename", ""))
            for kind, tensors in (("input", config.input), ("output", config.output)) for t in tensors]


def test_every_variant_has_its_configs() -> None:
    assert {p.parent.name for p in LOCAL.template.glob("*/config.pbtxt")} >= {"meal_analyzer"}
    assert {p.parent.name for p in PROD.template.glob("*/config.pbtxt")} == set(PROD.weights)
    assert {p.parent.name for p in GPU.template.glob("*/config.pbtxt")} == {"meal_analyzer"}


@pytest.mark.parametrize("path", COMMITTED_CONFIGS, ids=[str(p.relative_to(p.parents[2])) for p in COMMITTED_CONFIGS])
def test_config_parses_with_tritons_schema_and_names_its_folder(path: Path) -> None:
    config = read_config(path)
    assert config.name == path.parent.name
    assert config.max_batch_size > 0, "every model batches"
    assert bool(config.backend) != bool(config.platform), "a backend or a platform, not both"
    if config.platform != "ensemble":
        assert config.HasField("dynamic_batching"), "non-ensemble models batch dynamically"
    for output in config.output:
        if output.label_filename:
            assert (path.parent / output.label_filename).is_file(), output.label_filename


def test_a_broken_config_is_named() -> None:
    with pytest.raises(ModelBuildError, match="not a valid Triton model config"):
        repository.read_config(Path(__file__))


def test_all_variants_expose_identical_meal_analyzer_io() -> None:
    local, prod, gpu = (read_config(v.template / "meal_analyzer" / "config.pbtxt") for v in (LOCAL, PROD, GPU))
    assert _io(local) == _io(prod) == _io(gpu)
    assert [t.name for t in local.input] == ["image"]
    assert [t.name for t in local.output] == ["food_prob", "gate_probs", "dish_probs", "food_score_imagenet"]
    assert prod.platform == "ensemble" and local.backend == gpu.backend == "python"
    assert gpu.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert local.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU


def test_production_ensemble_is_wired_consistently() -> None:
    configs = {name: read_config(PROD.template / name / "config.pbtxt") for name in PROD.weights}
    ensemble = configs["meal_analyzer"]
    # Every tensor of the ensemble: (data type, dims without batch), starting with its inputs.
    tensors = {t.name: (t.data_type, tuple(t.dims)) for t in ensemble.input}
    for step in ensemble.ensemble_scheduling.step:
        model = configs[step.model_name]
        assert ensemble.max_batch_size <= model.max_batch_size, step.model_name
        inputs = {t.name: (t.data_type, tuple(t.dims)) for t in model.input}
        outputs = {t.name: (t.data_type, tuple(t.dims)) for t in model.output}
        assert set(step.input_map) == set(inputs), f"{step.model_name}: every input fed"
        for model_input, tensor in step.input_map.items():
            assert tensors.get(tensor) == inputs[model_input], f"{step.model_name}.{model_input} ← {tensor}"
        for model_output, tensor in step.output_map.items():
            assert model_output in outputs, f"{step.model_name} has no output {model_output}"
            assert tensor not in tensors, f"{tensor} produced twice"
            tensors[tensor] = outputs[model_output]
    for output in ensemble.output:
        assert tensors.get(output.name) == (output.data_type, tuple(output.dims)), output.name


@pytest.mark.slow
def test_each_production_graph_matches_its_config(built_models: BuiltModels) -> None:
    for name, files in PROD.weights.items():
        config = read_config(built_models.prod / name / "config.pbtxt")
        for file_name in files:
            graph = onnx.load(str(built_models.prod / name / repository.VERSION / file_name)).graph
            for declared, actual in ((config.input, graph.input), (config.output, graph.output)):
                assert [t.name for t in declared] == [v.name for v in actual], name
                for tensor, value in zip(declared, actual, strict=True):
                    shape = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
                    assert _ONNX_TYPES[value.type.tensor_type.elem_type] == tensor.data_type, (name, tensor.name)
                    assert shape == ["N", *tensor.dims], (name, tensor.name, shape)


@pytest.mark.slow
def test_committed_label_files_match_the_weights(built_models: BuiltModels) -> None:
    expected = build.expected_labels(built_models.settings)
    for variant in VARIANTS.values():
        build.check_label_files(variant, expected)
    wrong = {**expected, "gate_labels.txt": ["food", "other", "report"]}
    with pytest.raises(ModelBuildError, match=r"gate_labels\.txt: labels differ"):
        build.check_label_files(PROD, wrong)


def test_gpu_model_implements_every_operator_the_graphs_use(built_models: BuiltModels) -> None:
    source = (GPU.template / "meal_analyzer" / "1" / "model.py").read_text()
    tree = ast.parse(source)  # also: it is valid Python, though torch cannot be imported here
    ops = next(node.value for node in ast.walk(tree) if isinstance(node, ast.AnnAssign)
               and isinstance(node.target, ast.Name) and node.target.id == "OPS")
    assert isinstance(ops, ast.Dict)
    implemented = {key.value for key in ops.keys if isinstance(key, ast.Constant)}
    used = {node.op_type for path in built_models.report.graphs.values() for node in onnx.load(str(path)).graph.node}
    assert used <= implemented, used - implemented


def test_write_leaves_other_models_and_skips_unchanged_files(built_models: BuiltModels, tmp_path: Path) -> None:
    target = tmp_path / "repository"
    shutil.copytree(LOCAL.template / "placeholder", target / "placeholder")
    first = repository.write(LOCAL, target, built_models.report.graphs)
    assert {p.relative_to(target).as_posix() for p in first} == {
        "meal_analyzer/config.pbtxt", "meal_analyzer/dish_labels.txt", "meal_analyzer/gate_labels.txt",
        "meal_analyzer/1/model.py", *(f"meal_analyzer/1/{g}.onnx" for g in repository.GRAPHS)}
    assert (target / "placeholder" / "config.pbtxt").is_file()
    assert repository.write(LOCAL, target, built_models.report.graphs) == []
    assert [e.name for e in repository.list_models(target, LOCAL) if e.ready] == ["meal_analyzer", "placeholder"]


def test_list_names_what_a_repository_lacks(tmp_path: Path) -> None:
    shutil.copytree(PROD.template, tmp_path / "prod", ignore=shutil.ignore_patterns("*.onnx", "1"))
    entries = {e.name: e for e in repository.list_models(tmp_path / "prod", PROD)}
    assert entries["food_gate"].missing == ["1/model.onnx"]
    assert entries["meal_analyzer"].missing == ["1/"]
    assert entries["meal_analyzer"].runs_on == "ensemble"
