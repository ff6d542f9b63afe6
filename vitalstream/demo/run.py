"""The demo from start to end: stack, schema and topics; the workers and the API; the fleet; the driver; the
display; and, on Ctrl-C, SIGTERM or the end of --duration, everything it started stopped again, in order.
"""

from __future__ import annotations

import json
import logging
import secrets
import signal
import threading
import time
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.live import Live

from producers.client import EventProducer
from producers.config import ProducerConfig
from vitalstream.config import Settings
from vitalstream.demo import display, install
from vitalstream.demo.api_client import ApiClient, DemoError
from vitalstream.demo.drive import Driver, Plan, Sender, Tally, simulated_time_zones
from vitalstream.demo.fleet import DEMO_PASSWORD, DemoUser, sign_up_fleet
from vitalstream.demo.observe import Observer, Snapshot
from vitalstream.demo.orchestrate import Children, Say, child_environment
from vitalstream.logs import JsonFormatter
from vitalstream.object_store import object_store

log = logging.getLogger(__name__)

#: Seconds between screen updates on a terminal, and between plain lines without one (people's summaries: rarer).
REFRESH_S = 2.0
PLAIN_EVERY_S = 10.0
PLAIN_PEOPLE_EVERY_S = 30.0
#: The run file: who the demo's people are (no credentials but the shared demo password).
RUN_FILE = "demo.json"


@dataclass(frozen=True)
class Options:
    users: int = 30
    days: float = 3.0
    #: Seconds of driving before the demo stops by itself; None: until Ctrl-C.
    duration_s: float | None = None
    #: Simulated seconds per real second for the history; None: as fast as the pipeline takes it.
    speed: float | None = None
    seed: int = 0


class _StopRequestedError(Exception):
    """SIGTERM: stop as on Ctrl-C."""


def run_demo(settings: Settings, options: Options, console: Console) -> int:
    """Run until Ctrl-C, SIGTERM or the end of the duration; returns the exit status (0: a clean run and stop)."""
    run_dir = settings.stack_dir / "run" / "demo"
    run_dir.mkdir(parents=True, exist_ok=True)
    _log_to_file(run_dir / "demo.log", settings.log_level)
    started = time.monotonic()

    def say(message: str) -> None:
        console.print(f"[{_clock(time.monotonic() - started)}] {message}", style="dim", markup=False,
                      highlight=False, soft_wrap=True)

    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    # A shell starts background jobs with SIGINT ignored, and Python keeps it so: `kill -INT` must still stop us.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    use = install.StackUse()
    children = Children(settings)
    stop = threading.Event()
    driver: Driver | None = None
    observer: Observer | None = None
    clients: list[ApiClient] = []
    status = 0
    try:
        install.bring_up(settings, use, say)
        install.prepare(settings, say)
        unscraped = install.unscraped_ports(settings)
        if unscraped:
            say(f"warning: Prometheus at {settings.prometheus} does not scrape port(s) "
                f"{', '.join(map(str, unscraped))}: it was started with other port settings; restart it with "
                "`vitalstream stack down prometheus && vitalstream stack up prometheus` to see the demo's metrics")
        children.stop_leftovers(say)
        children.start(child_environment(settings, secrets.token_urlsafe(32)), say)

        api_url = f"http://127.0.0.1:{settings.api_port}"
        clients = [ApiClient(api_url), ApiClient(api_url)]
        run_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        end = datetime.now(UTC).replace(microsecond=0)
        plan = Plan(seed=options.seed, start=end - timedelta(days=options.days), days=options.days,
                    speed=options.speed)
        say(f"signing up {options.users} people through the API (run {run_id})")
        fleet = sign_up_fleet(clients[0], run_id, simulated_time_zones(plan, options.users))
        _write_run_file(run_dir / RUN_FILE, run_id, api_url, fleet)

        tally = Tally()
        producer = EventProducer(ProducerConfig(bootstrap_servers=settings.kafka, client_id="vitalstream-demo"))
        sender = Sender(clients[0], producer, object_store(settings), tally)
        driver = Driver(fleet, plan, sender, tally, stop)
        observer = Observer(settings, fleet, clients[1], [settings.streams_app_id, settings.inference_group_id],
                            since=datetime.now(UTC) - timedelta(minutes=1))
        context = display.Context(users=options.users, days=options.days, speed=options.speed, api_url=api_url,
                                  prometheus_url=settings.prometheus, login_email=fleet[0].email,
                                  login_password=DEMO_PASSWORD, logs_dir=str(run_dir))
        say(f"driving {options.users} people: {options.days:g} simulated days from {plan.start:%Y-%m-%d %H:%M} UTC, "
            f"then live" + (f"; stopping after {options.duration_s:g} s" if options.duration_s else
                            "; Ctrl-C stops"))
        driver.start()
        deadline = None if options.duration_s is None else time.monotonic() + options.duration_s
        status = _show(console, observer, tally, children, context, deadline, time.monotonic(), say)
    except KeyboardInterrupt:
        console.print()
        say("stopping (Ctrl-C)")
    except _StopRequestedError:
        say("stopping (SIGTERM)")
    except DemoError as error:
        console.print(f"Error: {error}", style="red", markup=False, highlight=False)
        status = 1
    finally:
        stop.set()
        if driver is not None and not driver.join(30.0):
            say("driver: still sending after 30 s; stopping anyway")
        say("stopping the API and the workers")
        with suppress(KeyboardInterrupt, _StopRequestedError):
            children.stop(say)
        if observer is not None:
            observer.close()
        for client in clients:
            client.close()
        with suppress(KeyboardInterrupt, _StopRequestedError):
            install.bring_down(settings, use, say)
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        say("demo stopped")
    return status


def _show(console: Console, observer: Observer, tally: Tally, children: Children, context: display.Context,
          deadline: float | None, driving_since: float, say: Say) -> int:
    """Refresh the display until the deadline or Ctrl-C (re-raised after the last figures are printed);
    returns 1 if a child or the driver failed."""
    screen = _Screen(console, observer, tally, context, driving_since, say)
    problem: str | None = None
    try:
        while deadline is None or time.monotonic() < deadline:
            dead = children.dead()
            if dead:
                problem = f"{dead[0].spec.name} exited unexpectedly{dead[0].tail()}"
                break
            screen.refresh()
            time.sleep(0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))
    except (KeyboardInterrupt, _StopRequestedError):
        with suppress(KeyboardInterrupt, _StopRequestedError):
            screen.close()
        raise
    last = screen.close()
    if problem is not None:
        console.print(f"Error: {problem}", style="red", markup=False, highlight=False)
        return 1
    say(f"--duration reached ({time.monotonic() - driving_since:.0f} s of driving)")
    return 1 if last.tally.error else 0


class _Screen:
    """The rich Live layout on a terminal; otherwise plain lines, new alerts and, now and then, the summaries."""

    def __init__(self, console: Console, observer: Observer, tally: Tally, context: display.Context,
                 driving_since: float, say: Say) -> None:
        self.console, self.observer, self.tally, self.context = console, observer, tally, context
        self.driving_since, self.say = driving_since, say
        self.rate = display.Rate()
        self.live: Live | None = None
        self.next_update = self.next_people = 0.0
        self.phase = ""
        self.seen_alerts: set[tuple[str, str, str]] = set()
        if console.is_terminal:
            self.live = Live(console=console, refresh_per_second=4, vertical_overflow="visible")
            self.live.start()
        else:
            for where in display.plain_where(context):
                say(where)

    def snapshot(self) -> tuple[Snapshot, float]:
        now = time.monotonic()
        copy = self.tally.copy()
        return self.observer.snapshot(copy, now - self.driving_since), self.rate.update(sum(copy.sent.values()), now)

    def refresh(self) -> None:
        if self.live is None and self.tally.phase != self.phase:
            self.phase = self.tally.phase
            self.say(f"phase: {self.phase}")
            for moment in self.tally.copy().moments:
                self.say(f"scripted: {moment.what} → expect {moment.expect}")
        if time.monotonic() < self.next_update:
            return
        snap, per_s = self.snapshot()
        if self.live is not None:
            self.live.update(display.render(snap, self.context, per_s))
            self.next_update = time.monotonic() + REFRESH_S
            return
        self._print(snap, per_s, people=time.monotonic() >= self.next_people)
        self.next_update = time.monotonic() + PLAIN_EVERY_S

    def close(self) -> Snapshot:
        """The last figures (the screen stays as it was drawn last; plain output gets the summaries too)."""
        snap, per_s = self.snapshot()
        if self.live is not None:
            self.live.update(display.render(snap, self.context, per_s))
            self.live.stop()
        else:
            self._print(snap, per_s, people=True)
        return snap

    def _print(self, snap: Snapshot, per_s: float, people: bool) -> None:
        lines = [display.line(snap, per_s)]
        for alert in reversed(snap.alerts):
            if (key := (alert.person, alert.kind, alert.occurred_at.isoformat())) not in self.seen_alerts:
                self.seen_alerts.add(key)
                lines.append(display.plain_alert(alert))
        if people and snap.summaries:
            lines += display.plain_people(snap)
            self.next_people = time.monotonic() + PLAIN_PEOPLE_EVERY_S
        for text in lines:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _raise_stopped(_signum: int, _frame: FrameType | None) -> None:
    raise _StopRequestedError()


def _clock(seconds: float) -> str:
    minutes, second = divmod(int(seconds), 60)
    return f"{minutes:02d}:{second:02d}"


def _log_to_file(path: Path, level: str) -> None:
    """The terminal is the display's: this process's JSON log lines go to <run>/demo.log instead."""
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # httpx logs every request at INFO: thousands of uploads.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _write_run_file(path: Path, run_id: str, api_url: str, fleet: list[DemoUser]) -> None:
    data = {"run": run_id, "started_at": datetime.now(UTC).isoformat(timespec="seconds"), "api_url": api_url,
            "password": DEMO_PASSWORD,
            "users": [{k: v for k, v in asdict(user).items() if k in ("index", "email", "user_id", "path")}
                      for user in fleet]}
    path.write_text(json.dumps(data, indent=2) + "\n")
