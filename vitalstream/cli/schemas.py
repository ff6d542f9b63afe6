"""`vitalstream schemas`: the event contracts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from schemas.export import export_json_schemas

app = typer.Typer(no_args_is_help=True, help="Event contracts.")


@app.command("export")
def export(directory: Annotated[Path, typer.Argument(help="Folder to write the schema files into.")]) -> None:
    """Write one JSON Schema file per event contract.

    Example: vitalstream schemas export build/schemas
    """
    for path in export_json_schemas(directory):
        Console().print(f"wrote {path}")
