"""`vitalstream db`: the TimescaleDB schema."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError

from storage import migrate
from streams.retention import policy_of, retain_once
from vitalstream.config import get_settings

app = typer.Typer(no_args_is_help=True, help="Database schema (Alembic migrations) and retention.")


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


@app.command("retention")
def retention() -> None:
    """Drop raw readings and snapshots older than the retention settings, once (the stream worker does it hourly).

    Example: VITALSTREAM_RETENTION_RAW_DAYS=730 vitalstream db retention
    """
    settings = get_settings()
    try:
        removed = retain_once(settings.database, policy_of(settings))
    except OperationalError as exc:
        raise typer.BadParameter(f"cannot reach the database: {exc.orig}", param_hint="DATABASE_URL") from exc
    table = Table("table", "removed")
    for name, count in removed.items():
        table.add_row(name, str(count))
    Console().print(table)
