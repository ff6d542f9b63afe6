"""`vitalstream simulate`: simulated people's devices sending to Kafka."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import click
import typer
from confluent_kafka import KafkaException
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from producers.client import EventProducer
from producers.config import ProducerConfig
from producers.errors import ProducerError
from producers.simulator import default_start
from producers.simulator import simulate as generate
from producers.simulator.publish import PublishCounts, SimulatedClock, publish
from schemas.events import MAX_CLOCK_SKEW
from schemas.topics import MEALS, READINGS
from vitalstream.config import get_settings
from vitalstream.kafka_admin import TopicMismatchError, admin_client, create_topics
from vitalstream.object_store import object_store


def simulate(
    users: Annotated[int, typer.Option(min=1, help="How many people to simulate.")] = 10,
    days: Annotated[float, typer.Option(min=0.01, help="How many days of data per person.")] = 1.0,
    start: Annotated[str | None, typer.Option(
        help="Start of the simulated period, ISO 8601 date or time (UTC unless it names an offset). "
             "Default: DAYS before the current hour, so nothing lies in the future.")] = None,
    speed: Annotated[float | None, typer.Option(
        min=0.001, help="Simulated seconds per real second; events are sent when their time comes.")] = None,
    as_fast_as_possible: Annotated[bool, typer.Option(
        "--as-fast-as-possible", help="Send everything at once (the default when --speed is not given).")] = False,
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same people, same events (ids included).")] = 0,
) -> None:
    """Simulate people with diabetes and/or high blood pressure and send their devices' events to Kafka.

    Per person: CGM every 5 minutes, finger-sticks, blood pressure, HbA1c, exercise and meals (some with a
    photo written to the object store). User ids are sim-<seed>-<index>.

    Example: vitalstream simulate --users 50 --days 2 --seed 7
    """
    if speed is not None and as_fast_as_possible:
        raise typer.BadParameter("give either --speed or --as-fast-as-possible, not both", param_hint="--speed")
    begin = default_start(days) if start is None else _parse_start(start)
    end = begin + timedelta(days=days)
    if end > datetime.now(UTC) + MAX_CLOCK_SKEW and speed != 1:
        raise typer.BadParameter(
            f"the period ends {end.isoformat()}, in the future: events would be sent before they happen; "
            "choose an earlier --start, or --speed 1 to play it in real time", param_hint="--start")
    settings = get_settings()
    try:
        create_topics(admin_client(settings.kafka), [READINGS, MEALS])
    except (TopicMismatchError, KafkaException) as exc:
        raise click.ClickException(f"kafka at {settings.kafka}: {exc}") from exc

    console = Console(stderr=True)
    with console.status("planning the simulation…"):
        total = sum(1 for _ in generate(seed, users, begin, days))
    store = object_store(settings)
    clock = None if speed is None else SimulatedClock(begin, speed)
    started = time.monotonic()
    progress = Progress(TextColumn("[bold]simulate"), BarColumn(), MofNCompleteColumn(), TextColumn("events"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=console)
    try:
        with progress, EventProducer(ProducerConfig(bootstrap_servers=settings.kafka)) as producer:
            task = progress.add_task("events", total=total)
            counts = publish(generate(seed, users, begin, days), producer, store, clock=clock,
                             on_sent=lambda _: progress.advance(task))
    except ProducerError as exc:
        raise click.ClickException(f"kafka at {settings.kafka}: {exc}") from exc
    _print_summary(counts, time.monotonic() - started, begin, end, store.describe())


def _parse_start(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date or time (e.g. 2025-03-01 or "
                                 "2025-03-01T06:00+01:00)", param_hint="--start") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _print_summary(counts: PublishCounts, seconds: float, begin: datetime, end: datetime, store: object) -> None:
    table = Table("event type", "sent", title="events sent")
    for event_type, count in sorted(counts.by_type.items()):
        table.add_row(event_type, f"{count:,}")
    table.add_row("[bold]total", f"[bold]{counts.events:,}")
    console = Console()
    console.print(table)
    rate = counts.events / seconds if seconds > 0 else float("inf")
    console.print(f"simulated {begin:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
    console.print(f"{len(counts.users)} users, {counts.photos} photos in {store}, "
                  f"{seconds:.1f} s, {rate:,.0f} events/s")
