"""The demo's screen: a rich layout redrawn in place on a terminal, or one plain line per interval without one
(CI, pipes), so a log of the run stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from vitalstream.demo.drive import Phase
from vitalstream.demo.fleet import PATH_ORDER
from vitalstream.demo.observe import TIERS, AlertRow, Snapshot

_TIER_STYLE = {"low": "green", "moderate": "yellow", "high": "dark_orange", "urgent": "bold red"}
_BAR_CELLS = 20


@dataclass(frozen=True)
class Context:
    """What does not change during a run."""

    users: int
    days: float
    speed: float | None
    api_url: str
    prometheus_url: str
    login_email: str
    login_password: str
    logs_dir: str


class Rate:
    """Items per second between two readings of a running total."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None
        self.value = 0.0

    def update(self, total: float, at_s: float) -> float:
        if self._last is not None and at_s > self._last[1]:
            self.value = max(0.0, (total - self._last[0]) / (at_s - self._last[1]))
        self._last = (total, at_s)
        return self.value


def _n(value: float | int | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _clock(seconds: float) -> str:
    minutes, second = divmod(int(seconds), 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour}:{minute:02d}:{second:02d}"


def phase_text(snap: Snapshot) -> str:
    tally = snap.tally
    if tally.phase == Phase.HISTORY:
        return f"history {100 * tally.history_fraction:.0f} %"
    return tally.phase


def render(snap: Snapshot, context: Context, sent_per_s: float) -> RenderableType:
    """The full screen for one snapshot."""
    tally = snap.tally
    speed = "as fast as it goes" if context.speed is None else f"×{context.speed:g}"
    title = (f"VitalStream demo · {context.users} people · {context.days:g} simulated days ({speed}) · "
             f"{_clock(snap.elapsed_s)} · {phase_text(snap)}")

    traffic = Table.grid(padding=(0, 2))
    traffic.add_column(style="bold")
    traffic.add_column(justify="right")
    traffic.add_column()
    for path in PATH_ORDER:
        traffic.add_row(path.value, _n(tally.sent[path.value]), _failed(tally.failed[path.value]))
    traffic.add_row("sent/s", f"{sent_per_s:,.0f}", f"{tally.requests:,} HTTP requests, {tally.photos:,} photos")

    figures = snap.figures
    pipeline = Table.grid(padding=(0, 2))
    pipeline.add_column(style="bold")
    pipeline.add_column()
    pipeline.add_row("stored", f"{_n(figures.get('stored_total'))} events, {_n(figures.get('stored_per_s'))}/s "
                               f"(API ingest {_n(figures.get('ingested_per_s'))}/s)")
    pipeline.add_row("consumer lag", " · ".join(f"{group} {lag:,}" for group, lag in sorted(snap.lag.items()))
                     or "–")
    pipeline.add_row("meal photos", f"{_n(figures.get('photos_analysed'))} analysed by Triton")
    pipeline.add_row("dead letters", _n(figures.get("dead_letters")))
    targets = [f"[{'green' if up else 'red'}]{job}[/]" for job, up in sorted(snap.targets.items())]
    pipeline.add_row("targets up", " ".join(targets) or "–")

    left = Group(Panel(traffic, title="sent by path", title_align="left"),
                 Panel(pipeline, title="pipeline (Prometheus, lag collector)", title_align="left"))
    right = Group(Panel(_tiers(snap), title=f"risk tiers of the {context.users} people (TimescaleDB)",
                        title_align="left"),
                  Panel(_alerts(snap), title=f"alerts: {snap.alerts_total} (alerts topic; times UTC)",
                        title_align="left"))
    columns = Table.grid(expand=True, padding=(0, 1))
    columns.add_column(ratio=1)
    columns.add_column(ratio=1)
    columns.add_row(left, right)

    parts: list[RenderableType] = [columns, Panel(_people(snap), title="people (GET /v1/me/summary)",
                                                  title_align="left")]
    if tally.moments:
        moments = Table.grid(padding=(0, 1))
        for moment in tally.moments:
            moments.add_row("•", Text(moment.what), Text(f"→ {moment.expect}", style="dim"))
        parts.append(Panel(moments, title="scripted moments", title_align="left"))
    problems = [*snap.problems, *([f"driver: {tally.error}"] if tally.error else [])]
    if problems:
        parts.append(Panel(Text("\n".join(problems), style="red"), title="problems", title_align="left"))
    parts.append(Panel(_where(context), title="where to look", title_align="left"))
    return Panel(Group(*parts), title=title, title_align="left")


def _failed(count: int) -> Text:
    return Text(f"{count:,} failed", style="red") if count else Text("")


def _tiers(snap: Snapshot) -> RenderableType:
    table = Table.grid(padding=(0, 1))
    most = max(snap.tiers.values(), default=0)
    for tier in TIERS:
        count = snap.tiers.get(tier, 0)
        cells = round(_BAR_CELLS * count / most) if most else 0
        table.add_row(Text(tier, style=_TIER_STYLE[tier]), Text("█" * cells, style=_TIER_STYLE[tier]),
                      Text(str(count)))
    assessed = sum(snap.tiers.values())
    table.add_row("", Text(f"{assessed} assessed", style="dim"), "")
    return table


def _alerts(snap: Snapshot) -> RenderableType:
    if not snap.alerts:
        return Text("none yet", style="dim")
    # One line per alert, cut at the panel's edge: the newest five fit; the full text is in the topic and the feed.
    return Group(*(Text(f"{alert.occurred_at:%H:%M} {alert.person} {alert.message}", no_wrap=True,
                        overflow="ellipsis") for alert in snap.alerts))


def _people(snap: Snapshot) -> RenderableType:
    if not snap.summaries:
        return Text("waiting for the first results", style="dim")
    table = Table("person", "tier", "glucose", "blood pressure", "HbA1c", box=None, padding=(0, 2))
    for person in snap.summaries:
        tier = Text(person.tier or "–", style=_TIER_STYLE.get(person.tier or "", ""))
        table.add_row(person.person, tier, person.glucose or "–", person.blood_pressure or "–", person.hba1c or "–")
    return table


def _where(context: Context) -> RenderableType:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_row("API docs", f"{context.api_url}/docs  (Authorize: {context.login_email} / {context.login_password})")
    table.add_row("Prometheus", f"{context.prometheus_url}  (try sum by (type) (rate(vitalstream_streams_events_total"
                                "[1m])); rules and alerts under /alerts)")
    table.add_row("Grafana", "not part of the local stack: `docker compose up` serves monitoring/grafana/dashboards at "
                             "http://localhost:3000")
    table.add_row("logs", f"{context.logs_dir}  (Ctrl-C stops the demo)")
    return table


def line(snap: Snapshot, sent_per_s: float) -> str:
    """One plain line: what a log without a terminal gets every interval."""
    tally, figures = snap.tally, snap.figures
    sent = ", ".join(f"{path.value} {tally.sent[path.value]:,}" for path in PATH_ORDER)
    failed = sum(tally.failed.values())
    lag = ", ".join(f"{group} {lag:,}" for group, lag in sorted(snap.lag.items())) or "–"
    tiers = " ".join(f"{tier} {snap.tiers.get(tier, 0)}" for tier in TIERS)
    text = (f"[{_clock(snap.elapsed_s)}] {phase_text(snap)} | sent {sent} ({sent_per_s:,.0f}/s"
            f"{f', {failed:,} failed' if failed else ''}) | stored {_n(figures.get('stored_total'))} "
            f"({_n(figures.get('stored_per_s'))}/s) | lag {lag} | tiers {tiers} | alerts {snap.alerts_total} | "
            f"photos {_n(figures.get('photos_analysed'))} | dead letters {_n(figures.get('dead_letters'))}")
    problems = [*snap.problems, *([f"driver: {tally.error}"] if tally.error else [])]
    return text + "".join(f"\n  problem: {p}" for p in problems)


def plain_where(context: Context) -> list[str]:
    """Where to look, as lines (printed once, before the figures start)."""
    return [f"API docs: {context.api_url}/docs (Authorize: {context.login_email} / {context.login_password})",
            f"Prometheus: {context.prometheus_url} (alerts and rules under /alerts)",
            "Grafana: not part of the local stack; `docker compose up` serves monitoring/grafana/dashboards at "
            "http://localhost:3000",
            f"logs: {context.logs_dir}"]


def plain_people(snap: Snapshot) -> list[str]:
    """One line per featured person's summary (none until the first results are in)."""
    return [f"  {person.person}: tier {person.tier or '–'} · glucose {person.glucose or '–'} · "
            f"BP {person.blood_pressure or '–'} · HbA1c {person.hba1c or '–'}" for person in snap.summaries
            if person.tier or person.glucose or person.blood_pressure or person.hba1c]


def plain_alert(alert: AlertRow) -> str:
    return f"  alert {alert.occurred_at:%Y-%m-%d %H:%M} UTC {alert.person}: {alert.message}"
