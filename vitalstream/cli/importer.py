"""`vitalstream import`: bring existing data (CSV exports) into Kafka."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import typer
from confluent_kafka import KafkaException
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from producers.client import EventProducer
from producers.config import ProducerConfig
from producers.errors import ProducerError
from producers.importer import CsvLayout, CsvLayoutError, ImportSummary, import_glucose
from schemas.events import GlucoseKind
from schemas.topics import READINGS
from schemas.units import GlucoseUnit
from vitalstream.config import get_settings
from vitalstream.kafka_admin import TopicMismatchError, admin_client, create_topics

app = typer.Typer(no_args_is_help=True, help="Import existing data into Kafka.")


@app.command("glucose")
def glucose(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV file, with a header.")],
    user_col: Annotated[str, typer.Option(help="Column with the user id.")] = "id",
    time_col: Annotated[str, typer.Option(help="Column with the time (ISO 8601; naive times are in --tz).")] = "time",
    value_col: Annotated[str, typer.Option(help="Column with the glucose value.")] = "gl",
    unit: Annotated[GlucoseUnit, typer.Option(help="Unit of the values.")] = GlucoseUnit.MG_DL,
    tz: Annotated[str, typer.Option(help="IANA time zone of naive times, e.g. America/New_York.")] = "UTC",
    kind: Annotated[GlucoseKind, typer.Option(help="What measured them.")] = GlucoseKind.CGM,
    device_id: Annotated[str, typer.Option(help="Device id given to every reading.")] = "import",
) -> None:
    """Publish a CSV of glucose readings to the readings topic; rows that break the contract are counted, not sent.

    Re-importing the same file gives the same event ids, so downstream writes stay idempotent. A naive time
    repeated when clocks go back is taken in file order; one skipped when they go forward is rejected.

    Example: vitalstream import glucose iglu_example_data_5_subject.csv --tz America/New_York
    """
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise typer.BadParameter(f"{tz!r} is not an IANA time zone (e.g. Europe/Berlin)", param_hint="--tz") from exc
    layout = CsvLayout(user_col=user_col, time_col=time_col, value_col=value_col, unit=unit, time_zone=tz,
                       kind=kind, device_id=device_id)
    settings = get_settings()
    started = time.monotonic()
    progress = Progress(TextColumn("[bold]import"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=Console(stderr=True))
    try:
        create_topics(admin_client(settings.kafka), [READINGS])
        with progress, EventProducer(ProducerConfig(bootstrap_servers=settings.kafka)) as producer:
            task = progress.add_task("bytes", total=file.stat().st_size)
            summary = import_glucose(file, layout, producer, on_bytes=lambda n: progress.advance(task, n))
    except CsvLayoutError as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from exc
    except (ProducerError, TopicMismatchError, KafkaException) as exc:
        raise click.ClickException(f"kafka at {settings.kafka}: {exc}") from exc
    _print_summary(summary, time.monotonic() - started)


def _print_summary(summary: ImportSummary, seconds: float) -> None:
    console = Console()
    console.print(f"read {summary.read:,} rows: published {summary.published:,} readings for "
                  f"{len(summary.users)} users, rejected {summary.rejected:,} ({seconds:.1f} s)")
    if summary.rejected:
        table = Table("rejected rows", "reason", "first (line: problems)")
        for reason, count in summary.rejected_by_reason.most_common():
            example = summary.examples[reason]
            table.add_row(f"{count:,}", reason, f"{example.line}: {'; '.join(example.problems)}")
        console.print(table)
