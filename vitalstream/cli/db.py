"""`vitalstream db`: the TimescaleDB schema."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError

from storage import migrate
from vitalstream.config import get_settings

app = typer.Typer(no_args_is_help=True, help="Database schema (Alembic migrations).")


@app.command("upgrade")
def upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the schema migrations up to REVISION (safe to run again).

    Example: DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:35432/vitalstream vitalstream db upgrade
    """
    try:
        migrate.upgrade(get_settings().database, revision)
    except OperationalError as exc:
        raise typer.BadParameter(f"cannot reach the database: {exc.orig}", param_hint="DATABASE_URL") from exc
    Console().print(f"schema at {revision}")
