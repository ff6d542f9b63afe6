"""`vitalstream worker`: the long-running workers."""

from __future__ import annotations

from typing import Annotated

import typer

from vitalstream.config import get_settings

app = typer.Typer(no_args_is_help=True, help="Long-running workers.")


@app.callback()
def _group() -> None:
    # A callback keeps `streams` a subcommand even while it is the group's only one.
    pass


@app.command("streams")
def streams(
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", help="Port of the Prometheus /metrics endpoint [default: VITALSTREAM_STREAMS_METRICS_PORT]",
        show_default=False)] = None,
) -> None:
    """Consume readings, meals and profiles; keep per-user state; write metrics, tiers and daily totals
    to TimescaleDB; publish alerts and risk-tier changes. Run it more than once to share the partitions.

    Example: vitalstream worker streams --metrics-port 38091
    """
    from streams.worker import run

    settings = get_settings()
    run(settings, metrics_port if metrics_port is not None else settings.streams_metrics_port)
