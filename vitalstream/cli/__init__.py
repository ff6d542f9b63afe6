"""The `vitalstream` command: one entry point, one module per command group."""

from __future__ import annotations

import typer

from vitalstream.cli import (
    api,
    db,
    demo,
    importer,
    metrics,
    models,
    schemas,
    simulate,
    stack,
    topics,
    worker,
    worker_inference,
)
from vitalstream.config import get_settings
from vitalstream.logs import configure_logging

app = typer.Typer(
    name="vitalstream",
    help="VitalStream: glucose, blood pressure, activity and meals, streamed and scored.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(schemas.app, name="schemas")
app.add_typer(topics.app, name="topics")
app.add_typer(db.app, name="db")
app.add_typer(metrics.app, name="metrics")
app.add_typer(models.app, name="models")
app.add_typer(api.app, name="api")
worker.app.command("inference")(worker_inference.inference)
app.add_typer(worker.app, name="worker")
app.command("demo")(demo.demo)
app.add_typer(importer.app, name="import")
app.command("simulate")(simulate.simulate)


@app.callback()
def _root() -> None:
    configure_logging(get_settings().log_level)


def main() -> None:
    """Console-script entry point."""
    app()
