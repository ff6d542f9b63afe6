"""`vitalstream stack`: the local stack (Kafka, PostgreSQL/TimescaleDB, Triton, Prometheus) on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Column, Table

from stack import manager
from stack.base import StackError
from stack.manager import StackStatus
from vitalstream.config import get_settings

app = typer.Typer(no_args_is_help=True, help="The local stack: install once, start, stop, inspect.")

_STATE_STYLE = {"running": "green", "stopped": "dim", "external": "cyan", "degraded": "red", "unavailable": "yellow"}
ServiceNames = Annotated[list[str] | None, typer.Argument(
    help="Services to act on (kafka, postgres, triton, prometheus); all when none are given.", show_default=False)]


@app.command("up")
def up(services: ServiceNames = None) -> None:
    """Install (first run only), start and wait until ready; running services are left alone.

    Services given by KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, TRITON_URL or PROMETHEUS_URL are not started.

    Example: vitalstream stack up kafka prometheus
    """
    settings = get_settings()
    with _errors(), _progress() as say:
        result = manager.up(settings, services, progress=say)
    _print(result, title=f"stack up: {result.total_s:.1f} s")
    shown = {s.name for s in result.services}
    for name, first in manager.first_run_times(settings).items():
        if name in shown:
            Console().print(f"{name} first run: install {first['install_s']:.1f} s + start "
                            f"{first.get('start_s', 0.0):.1f} s", style="dim", highlight=False)


@app.command("down")
def down(services: ServiceNames = None,
         wipe: Annotated[bool, typer.Option("--wipe", help="Also delete their data and logs (installs are kept).")]
         = False) -> None:
    """Stop services by the PIDs they recorded and check that no process of theirs is left.

    Data (topics, tables, metrics) is kept for the next `up`, unless --wipe is given.

    Example: vitalstream stack down --wipe
    """
    with _errors(), _progress() as say:
        result = manager.down(get_settings(), services, wipe=wipe, progress=say)
    _print(result, title=f"stack down: {result.total_s:.1f} s")


@app.command("status")
def status() -> None:
    """Show each service's state, address, PIDs and uptime.

    Example: vitalstream stack status
    """
    with _errors():
        result = manager.status(get_settings())
    _print(result, title=f"stack in {get_settings().stack_dir}", time_header="uptime")


@app.command("logs")
def logs(service: Annotated[str, typer.Argument(help="kafka, postgres, triton or prometheus.", show_default=False)],
         lines: Annotated[int, typer.Option("-n", "--lines", help="How many lines from the end of each log.")] = 50,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C ends).")]
         = False) -> None:
    """Print the end of a service's logs (Kafka has two: ZooKeeper's and the broker's).

    Example: vitalstream stack logs kafka -n 100 --follow
    """
    with _errors():
        paths = manager.logs(get_settings(), service)
    existing = [p for p in paths if p.exists()]
    if not existing:
        _fail(f"{service} has no logs yet (looked for {', '.join(map(str, paths))})")
    offsets = {}
    for path in existing:
        if len(existing) > 1:
            typer.echo(f"==> {path} <==")
        typer.echo("".join(tail(path, lines)), nl=False)
        offsets[path] = path.stat().st_size
    if follow:
        _follow(paths, offsets, label=len(paths) > 1)


def tail(path: Path, lines: int, block_bytes: int = 65536) -> list[str]:
    """The last `lines` lines of a file, read from its end (broker logs grow large)."""
    if lines <= 0:
        return []
    with open(path, "rb") as handle:
        end = handle.seek(0, 2)
        data = b""
        position = end
        while position > 0 and data.count(b"\n") <= lines:
            step = min(block_bytes, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
    return [line.decode(errors="replace") for line in data.splitlines(keepends=True)[-lines:]]


def _follow(paths: list[Path], offsets: dict[Path, int], label: bool) -> None:
    try:
        while True:
            for path in paths:
                if not path.exists():
                    continue
                size = path.stat().st_size
                start = offsets.get(path, 0)
                if size < start:  # truncated or replaced (wipe): read it from the top
                    start = 0
                if size > start:
                    with open(path, "rb") as handle:
                        handle.seek(start)
                        chunk = handle.read(size - start).decode(errors="replace")
                    prefix = f"[{path.stem}] " if label else ""
                    typer.echo("".join(prefix + line for line in chunk.splitlines(keepends=True)), nl=False)
                offsets[path] = size
            time.sleep(0.5)
    except KeyboardInterrupt:
        return


def _print(result: StackStatus, title: str, time_header: str = "time") -> None:
    table = Table(Column("service", no_wrap=True), Column("state", no_wrap=True),
                  Column("address", overflow="fold", min_width=24), "pid(s)", Column(time_header, no_wrap=True), "note",
                  title=title)
    for s in result.services:
        style = _STATE_STYLE.get(s.state, "")
        seconds = "" if s.seconds is None else _duration(s.seconds)
        note = s.note
        if s.install_s is not None and s.start_s is not None:
            # An install that found everything in the cache is not worth a mention.
            installed = f"installed in {s.install_s:.1f} s, " if s.install_s >= 0.5 else ""
            note = f"{installed}started in {s.start_s:.1f} s"
        table.add_row(s.name, f"[{style}]{s.state}[/]" if style else s.state, s.address,
                      " ".join(map(str, s.pids)), seconds, note)
    Console().print(table)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@contextmanager
def _errors() -> Iterator[None]:
    """Library errors become an error message and exit status 1, at this boundary only."""
    try:
        yield
    except StackError as err:
        _fail(str(err))


def _fail(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def _progress() -> Iterator[manager.Progress]:
    console = Console(stderr=True)
    with console.status("working") as spinner:
        def say(message: str) -> None:
            spinner.update(message)
            console.print(message, style="dim", markup=False, highlight=False)

        yield say
