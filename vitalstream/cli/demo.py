"""`vitalstream demo`: the whole pipeline on the local stack, driven by simulated people, shown live."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from vitalstream.config import get_settings


def demo(
    users: Annotated[int, typer.Option(min=1, max=2000, help="How many simulated people.")] = 30,
    days: Annotated[float, typer.Option(
        min=0.01, max=60, help="Simulated days of history per person (14-day figures need at least 10).")] = 3.0,
    duration: Annotated[float | None, typer.Option(
        min=1, help="Stop by itself after this many seconds of driving (counted once everything is up). "
                    "Default: run until Ctrl-C.", show_default=False)] = None,
    speed: Annotated[float | None, typer.Option(
        min=0.001, help="Replay the history at this many simulated seconds per real second. Default: as fast as "
                        "the pipeline takes it.", show_default=False)] = None,
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same simulated people.")] = 0,
) -> None:
    """Run the whole pipeline on this machine with simulated people, and show it live.

    Starts what is not running of the local stack (installing it on first use), migrates the database, creates
    the topics, starts the stream worker, the meal-photo consumer and the API, signs the people up through the
    API and sends their devices' data: through the API (device keys), through the Nightscout endpoint
    (xDrip+-style uploads) and straight to Kafka, meal photos included. Then three scripted moments (a
    blood-pressure crisis, a message on an old contract, a photo that is not an image) and live data in real
    time. Ctrl-C stops what the demo started; a stack that was already running is left running.

    Example: vitalstream demo --users 30 --days 3
    """
    from vitalstream.demo.run import Options, run_demo

    status = run_demo(get_settings(), Options(users=users, days=days, duration_s=duration, speed=speed, seed=seed),
                      Console(highlight=False))
    raise typer.Exit(status)
