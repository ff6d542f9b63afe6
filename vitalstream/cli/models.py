"""`vitalstream models`: the meal-photo models (fetched, converted to ONNX) and the Triton repositories serving them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from inference_consumer.models import build as model_build
from inference_consumer.models import repository
from inference_consumer.models.errors import ModelBuildError
from inference_consumer.models.fetch import Progress
from vitalstream.config import get_settings

app = typer.Typer(no_args_is_help=True, help="Meal-photo models: fetch, convert to ONNX, write Triton repositories.")


class VariantName(StrEnum):
    local = "local"
    prod = "prod"
    gpu = "gpu"


Variants = Annotated[list[VariantName] | None, typer.Argument(
    help="Repositories to write: local (python backend, CPU; what the local stack serves), prod (onnxruntime "
         "ensemble for a full Triton), gpu (python backend, PyTorch on the GPU); all when none are given.",
    show_default=False)]
RepositoryOption = Annotated[Path | None, typer.Option(file_okay=False, show_default=False)]


@app.command("build")
def build(variants: Variants = None,
          local: RepositoryOption = None, prod: RepositoryOption = None, gpu: RepositoryOption = None) -> None:
    """Download the pinned packages (first run only), convert both networks to ONNX and write the repositories.

    The local repository defaults to VITALSTREAM_MODEL_REPOSITORY (what the local Triton serves); prod and gpu
    default to inference_consumer/model_repository_prod and _gpu. Only generated .onnx files and the committed
    configs are written; other models in a repository are left alone. Safe to run again.

    Example: vitalstream models build local --local /tmp/model_repository
    """
    settings = get_settings()
    defaults = model_build.default_targets(settings)
    given = {"local": local, "prod": prod, "gpu": gpu}
    chosen = [v.value for v in variants] if variants else list(defaults)
    targets = {name: given[name] or defaults[name] for name in chosen}
    with _errors(), _progress() as say:
        report = model_build.build(settings, targets, progress=say)
    table = Table("step", "seconds", "what", title="models build")
    for spec, seconds in report.fetch.seconds.items():
        table.add_row("download", f"{seconds:.1f}", spec)
    for spec in report.fetch.cached:
        table.add_row("download", "cached", spec)
    table.add_row("convert", f"{report.convert_s:.1f}",
                  ", ".join(f"{name} ({path.stat().st_size / 1e6:.1f} MB)" for name, path in report.graphs.items()))
    for name, target in report.repositories.items():
        table.add_row("write", "", f"{name}: {target}")
    table.caption = f"{len(report.written)} files written (unchanged files are not rewritten)"
    Console().print(table)


@app.command("list")
def list_models() -> None:
    """Show each repository's models: what runs them, their inputs and outputs, and what they still lack.

    Example: vitalstream models list
    """
    incomplete = False
    for name, target in model_build.default_targets(get_settings()).items():
        variant = repository.VARIANTS[name]
        table = Table("model", "runs on", "inputs", "outputs", "state", title=f"{name}: {target}",
                      caption=variant.description)
        with _errors():
            entries = repository.list_models(target, variant) if target.is_dir() else []
        for entry in entries:
            state = "[green]ready[/]" if entry.ready else f"[yellow]missing {', '.join(entry.missing)}[/]"
            table.add_row(entry.name, entry.runs_on, "\n".join(entry.inputs), "\n".join(entry.outputs), state)
            incomplete = incomplete or not entry.ready
        Console().print(table)
    if incomplete:
        Console().print("Run `vitalstream models build` to write the missing files.")


@contextmanager
def _errors() -> Iterator[None]:
    """Library errors become an error message and exit status 1, at this boundary only."""
    try:
        yield
    except ModelBuildError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1) from err


@contextmanager
def _progress() -> Iterator[Progress]:
    console = Console(stderr=True)
    with console.status("working") as spinner:
        def say(message: str) -> None:
            spinner.update(message)
            console.log(message)

        yield say
