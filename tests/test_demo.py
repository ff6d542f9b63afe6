"""`vitalstream demo` end to end, with nothing stood in for: the session's local stack (all four services), the
demo as a subprocess (it starts the stream worker, the inference consumer and the API itself), then the real
Prometheus and TimescaleDB are asked what the monitoring would show.

While the demo runs: every catalogued metric family has samples, every target is up, every alert rule is loaded
and healthy. Every Grafana panel query returns data for the demo's time range: PromQL against Prometheus (as
Grafana would draw it, a range query), SQL against TimescaleDB with `$user` set to one of the demo's people.
Then Ctrl-C: the demo stops its children and leaves the session's stack running, as it found it.

The population panels hide groups of fewer than 5 people and the 14-day figures need 70 % of 14 days of CGM, so
the demo runs 21 people over 11 simulated days (about 70,000 events, a minute's work for the pipeline here).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from sqlalchemy.engine import make_url

from producers.simulator.user import UserSimulator
from schemas.events import GlucoseKind, GlucoseReading, MealLogged, MealSlot, Source, Trend
from schemas.units import GlucoseUnit
from stack import manager
from stack.prometheus import PROMTOOL, RULES_DIR
from stack.testing import StackProvider
from tests.monitoring.queries import (
    PROMETHEUS_UID,
    TIMESCALEDB_UID,
    PanelQuery,
    family,
    metric_names,
    panel_queries,
    promql_for_prometheus,
    rule_groups,
    sql_for_postgres,
)
from tests.monitoring.test_metric_catalogue import catalogue
from vitalstream.config import Settings
from vitalstream.demo import display
from vitalstream.demo.drive import Phase, Tally
from vitalstream.demo.fleet import DemoUser
from vitalstream.demo.fleet import Path as Way
from vitalstream.demo.observe import AlertRow, PersonSummary, Snapshot
from vitalstream.demo.orchestrate import vitalstream_command
from vitalstream.demo.scenario import Moment
from vitalstream.demo.uploads import nightscout_carbs, nightscout_entry, upload_for
from vitalstream.kafka_lag import LAG_METRIC, ConsumerLagCollector

USERS, DAYS = 21, 11
#: The jobs of monitoring/prometheus/local.yml.
JOBS = ("prometheus", "triton", "api", "streams", "inference-consumer")
#: From the history being sent to the pipeline having stored it and the scripted moments having shown.
CATCH_UP_S = 150.0
#: The stream worker has handled nothing new for this long: it has caught up.
IDLE_S = 8.0
PROMQL = [q for q in panel_queries() if q.datasource_uid == PROMETHEUS_UID]
SQL = [q for q in panel_queries() if q.datasource_uid == TIMESCALEDB_UID]
PLANNED = {name for name, entry in catalogue().items() if entry.planned}
EXPECTED_FAMILIES = sorted(name for name, entry in catalogue().items() if not entry.planned)


@dataclass
class DemoRun:
    settings: Settings
    output: list[str] = field(default_factory=list)
    returncode: int | None = None
    driving_since: float = 0.0
    checked_at: float = 0.0
    run_file: dict[str, Any] = field(default_factory=dict)
    children: dict[str, int] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)

    @property
    def text(self) -> str:
        return "\n".join(self.output)


# -- helpers ---------------------------------------------------------------------------------------------------
def _reader(process: subprocess.Popen[str], run: DemoRun) -> threading.Thread:
    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            run.output.append(line.rstrip("\n"))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _wait_for_line(run: DemoRun, process: subprocess.Popen[str], needle: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(needle in line for line in run.output):
        assert process.poll() is None, f"the demo exited ({process.returncode}) before '{needle}':\n{run.text}"
        assert time.monotonic() < deadline, f"no '{needle}' from the demo within {timeout_s:.0f} s:\n{run.text}"
        time.sleep(0.5)


def _present_families(prometheus: httpx.Client, at: float | None = None) -> set[str]:
    params: dict[str, Any] = {"query": 'count by (__name__) ({__name__=~"vitalstream_.+"})'}
    if at is not None:
        params["time"] = at
    result = prometheus.get("/api/v1/query", params=params).json()["data"]["result"]
    return {family(series["metric"]["__name__"]) for series in result}


def _lag(settings: Settings) -> dict[str, int]:
    lag: dict[str, int] = {}
    collector = ConsumerLagCollector(settings.kafka, [settings.streams_app_id, settings.inference_group_id])
    for metric in collector.collect():
        if metric.name == LAG_METRIC:
            for sample in metric.samples:
                lag[sample.labels["group"]] = lag.get(sample.labels["group"], 0) + int(sample.value)
    return lag


def _handled_by_stream_worker(settings: Settings) -> float:
    """Messages the demo's stream worker has handled so far, from its own /metrics (no scrape delay)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{settings.streams_metrics_port}/metrics", timeout=5.0).text
    except httpx.HTTPError:
        return -1.0
    return sum(sample.value for metric in text_string_to_metric_families(text)
               if metric.name == "vitalstream_streams_events" for sample in metric.samples
               if sample.name.endswith("_total"))


def _demo_environment() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


# -- the run -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(stack: StackProvider) -> Iterator[DemoRun]:
    for name in ("kafka", "postgres", "triton", "prometheus"):
        stack.require(name)
    settings = stack.settings
    run = DemoRun(settings)
    process = subprocess.Popen([*vitalstream_command("demo"), "--users", str(USERS), "--days", str(DAYS)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_demo_environment())
    reader = _reader(process, run)
    try:
        _wait_for_line(run, process, "driving", timeout_s=180)
        run.driving_since = time.time()
        run_dir = settings.stack_dir / "run" / "demo"
        run.children = {p.stem: int(p.read_text().split()[0]) for p in run_dir.glob("*.pid")}
        run.run_file = json.loads((run_dir / "demo.json").read_text())
        _wait_for_line(run, process, "phase: live", timeout_s=CATCH_UP_S)
        with httpx.Client(base_url=settings.prometheus, timeout=10.0) as prometheus:
            deadline = time.monotonic() + CATCH_UP_S
            stored, idle_since = -1.0, time.monotonic()
            while True:
                assert process.poll() is None, f"the demo exited ({process.returncode}):\n{run.text}"
                run.present = _present_families(prometheus)
                lag = _lag(settings)
                # Caught up: the broker says nothing is left, or (the worker's commits may trail what it has
                # stored) the worker has handled nothing new for a while and the meal consumer has no lag.
                now_stored = _handled_by_stream_worker(settings)
                if now_stored != stored:
                    stored, idle_since = now_stored, time.monotonic()
                idle = time.monotonic() - idle_since >= IDLE_S and lag.get(settings.inference_group_id, 1) == 0
                if set(EXPECTED_FAMILIES) <= run.present and ((lag and not any(lag.values())) or idle):
                    break
                if time.monotonic() > deadline:
                    break  # the tests below say what is missing
                time.sleep(1.0)
        # Two scrapes more, so every rate window holds the last of the traffic.
        time.sleep(12.0)
        run.checked_at = time.time()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            run.returncode = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            run.returncode = process.wait()
        reader.join(timeout=10)
    yield run


# -- while it ran: Prometheus ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prometheus(demo: DemoRun) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo.settings.prometheus, timeout=10.0) as client:
        yield client


@pytest.mark.parametrize("name", EXPECTED_FAMILIES)
def test_every_catalogued_metric_family_has_samples(demo: DemoRun, prometheus: httpx.Client, name: str) -> None:
    present = _present_families(prometheus, at=demo.checked_at)
    assert name in present, f"{name}: no samples in Prometheus while the demo ran; demo output:\n{demo.text}"


def test_every_target_was_up(demo: DemoRun, prometheus: httpx.Client) -> None:
    result = prometheus.get("/api/v1/query", params={"query": "min by (job) (up)", "time": demo.checked_at}).json()
    up = {series["metric"]["job"]: series["value"][1] for series in result["data"]["result"]}
    assert up == dict.fromkeys(JOBS, "1"), f"targets: {up}"


def test_every_rule_is_loaded_and_healthy(demo: DemoRun, prometheus: httpx.Client) -> None:
    loaded = prometheus.get("/api/v1/rules").json()["data"]["groups"]
    health = {(g["name"], r["name"]): (r["health"], r.get("lastError", "")) for g in loaded for r in g["rules"]}
    expected = {(g["name"], r.get("alert") or r["record"]) for g in rule_groups() for r in g["rules"]}
    assert expected <= set(health), f"rules Prometheus has not loaded: {sorted(expected - set(health))}"
    broken = {rule: state for rule, state in health.items() if rule in expected and state[0] == "err"}
    assert not broken, f"rules that fail to evaluate: {broken}"


def test_promtool_rule_unit_tests_pass(demo: DemoRun) -> None:
    result = subprocess.run([str(PROMTOOL), "test", "rules", *map(str, sorted((RULES_DIR / "tests").glob("*.yml")))],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("query", PROMQL, ids=lambda q: q.name)
def test_promql_panel_shows_data(demo: DemoRun, prometheus: httpx.Client, query: PanelQuery) -> None:
    planned = {family(name) for name in metric_names(query.text)} & PLANNED
    if planned:
        pytest.skip(f"uses {sorted(planned)}, marked planned in monitoring/README.md (not exported yet)")
    response = prometheus.get("/api/v1/query_range", params={
        "query": promql_for_prometheus(query.text), "start": demo.driving_since, "end": demo.checked_at, "step": 5})
    body = response.json()
    assert response.status_code == 200, f"{query.name}: {body.get('error')}"
    values = [float(v) for series in body["data"]["result"] for _, v in series["values"]]
    assert any(math.isfinite(v) for v in values), f"{query.name}: no data over the demo's run ({len(values)} points)"


# -- after it ran: TimescaleDB -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def timescaledb(demo: DemoRun) -> Iterator[psycopg.Connection[Any]]:
    dsn = make_url(demo.settings.database).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as connection:
        connection.read_only = True  # as Grafana's data source
        yield connection


@pytest.mark.parametrize("query", SQL, ids=lambda q: q.name)
def test_sql_panel_shows_data(demo: DemoRun, timescaledb: psycopg.Connection[Any], query: PanelQuery) -> None:
    person = demo.run_file["users"][0]["user_id"]
    now = datetime.now(UTC)
    sql = sql_for_postgres(query.text, now - timedelta(days=DAYS + 2), now + timedelta(hours=1), person)
    rows = timescaledb.execute(sql).fetchall()
    assert rows, f"{query.name}: no rows for the demo's people (user {person})"


# -- how it ended ------------------------------------------------------------------------------------------------
def test_demo_ran_every_path_and_stopped_cleanly_on_ctrl_c(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.text
    assert "stopping (Ctrl-C)" in demo.text
    sent = [line for line in demo.output if "| sent api" in line][-1]
    counts = re.search(r"sent api ([\d,]+), nightscout ([\d,]+), kafka ([\d,]+)", sent)
    assert counts is not None, sent
    for way, count in zip(("api", "nightscout", "kafka"), counts.groups(), strict=True):
        assert int(count.replace(",", "")) > 1000, f"{way}: only {count} items sent ({sent})"
    assert "problem:" not in demo.text and "failed" not in sent, demo.text
    assert {user["path"] for user in demo.run_file["users"]} == {"api", "nightscout", "kafka"}


def test_children_are_stopped_and_the_session_stack_left_running(demo: DemoRun) -> None:
    assert set(demo.children) == {"streams", "inference", "api"}
    alive = [name for name, pid in demo.children.items() if Path(f"/proc/{pid}").exists()
             and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"]
    assert not alive, f"still running after the demo ended: {alive}"
    assert not list((demo.settings.stack_dir / "run" / "demo").glob("*.pid"))
    assert "left running, as the demo found them" in demo.text
    states = {s.name: s.state for s in manager.status(demo.settings).services}
    assert all(state in ("running", "external") for state in states.values()), states


# -- pure mapping, no services: what each path sends ------------------------------------------------------------
def _person(way: Way) -> DemoUser:
    return DemoUser(index=0, email="demo@example.org", user_id="u-1", path=way, access_token="t")


def test_nightscout_documents_map_back_to_the_simulated_reading() -> None:
    from api.nightscout import map_entry, map_treatment

    at = datetime(2026, 3, 1, 7, 30, tzinfo=UTC)
    cgm = GlucoseReading(user_id="sim", device_id="sim-cgm", source=Source.SIMULATOR, occurred_at=at,
                         received_at=at, unit=GlucoseUnit.MG_DL, value=143.0, kind=GlucoseKind.CGM,
                         trend=Trend.FORTY_FIVE_UP)
    event = map_entry(nightscout_entry(cgm), 0, "u-1", at).events[0]
    assert isinstance(event, GlucoseReading)
    assert (event.occurred_at, event.glucose_mg_dl, event.kind, event.trend) == (at, 143.0, GlucoseKind.CGM,
                                                                                 Trend.FORTY_FIVE_UP)
    meter = cgm.model_copy(update={"kind": GlucoseKind.FINGERSTICK, "unit": GlucoseUnit.MMOL_L, "value": 7.9,
                                   "trend": None})
    event = map_entry(nightscout_entry(meter), 0, "u-1", at).events[0]
    assert isinstance(event, GlucoseReading) and event.kind is GlucoseKind.FINGERSTICK
    assert event.glucose_mg_dl == pytest.approx(meter.glucose_mg_dl, abs=0.5)

    # Dinner at 19:30 in Seoul is 10:30 UTC: the slot comes from the local time the treatment is written in.
    meal = MealLogged(user_id="sim", device_id="sim-app", source=Source.SIMULATOR, occurred_at=at + timedelta(hours=3),
                      received_at=at + timedelta(hours=3), meal_slot=MealSlot.DINNER, carbs_g=60.0)
    mapped = map_treatment(nightscout_carbs(meal, ZoneInfo("Asia/Seoul")), 0, "u-1", at + timedelta(hours=4))
    assert [(e.meal_slot, e.carbs_g) for e in mapped.events if isinstance(e, MealLogged)] == [(MealSlot.DINNER, 60.0)]


def test_each_path_sends_where_it_should() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    simulated = UserSimulator(7, 1, start, start + timedelta(days=1))  # a person who photographs 2 meals that day
    events = list(simulated.events())
    assert any(isinstance(i.event, MealLogged) and i.photo is not None for i in events)
    zone = ZoneInfo(simulated.profile.time_zone)
    for way in (Way.API, Way.NIGHTSCOUT, Way.KAFKA):
        person = _person(way)
        for item in events:
            upload = upload_for(item, person, zone)
            photo_meal = isinstance(item.event, MealLogged) and item.photo is not None
            if photo_meal:  # every path uploads photos as the app does, through the API
                assert upload.channel.route == "/v1/meals/photo" and upload.channel.credential == "app"
                assert upload.channel.via is Way.API and upload.photo == item.photo
                assert upload.document is not None and "user_id" not in upload.document
                assert set(upload.document) >= {"meal_slot", "occurred_at", "event_id"}
                assert upload.document["event_id"] != str(item.event.event_id)  # ids of its own
                assert upload_for(item, person, zone) == upload, "the same id again: a retry is a no-op"
            elif way is Way.KAFKA:
                assert upload.event is not None and upload.event.user_id == "u-1"
                assert upload.event.event_id != item.event.event_id  # ids of its own: no two people share one
            else:
                assert upload.document is not None and "user_id" not in upload.document
                assert upload.channel.via is way or (way is Way.NIGHTSCOUT and upload.channel.via is Way.API)
    cgm = next(i for i in events if isinstance(i.event, GlucoseReading) and i.event.kind is GlucoseKind.CGM)
    assert upload_for(cgm, _person(Way.NIGHTSCOUT), zone).channel.route == "/api/v1/entries"
    assert upload_for(cgm, _person(Way.API), zone).channel.route == "/v1/readings/glucose"


def test_the_terminal_layout_shows_every_part() -> None:
    # CI has no terminal, so the demo prints plain lines there: draw the rich layout here instead.
    tally = Tally(phase=Phase.HISTORY, history_fraction=0.42, sent=Counter(api=11_212, nightscout=10_953, kafka=9),
                  requests=321, photos=114, moments=[Moment("person #0 (api): cuff reads 186/124 mmHg", "an alert")])
    snap = Snapshot(tally=tally, elapsed_s=83, figures={"stored_total": 13_902, "stored_per_s": 678, "dead_letters": 2},
                    targets={"api": True, "streams": False}, lag={"vitalstream-streams": 18_985},
                    tiers={"high": 13, "urgent": 3}, alerts_total=4,
                    alerts=[AlertRow(datetime(2026, 3, 1, 7, 30, tzinfo=UTC), "#0 (api)", "hypertensive_crisis",
                                     "Blood pressure 186/124 mmHg is in the crisis range")],
                    summaries=[PersonSummary("#0 (api)", "urgent", "142 mg/dL → (in range)", "186/124 mmHg", None)],
                    problems=["Prometheus at http://127.0.0.1:1: refused"])
    context = display.Context(30, 3, None, "http://127.0.0.1:38080", "http://127.0.0.1:39090", "a@example.org",
                              "vitalstream-demo", ".stack/run/demo")
    console = Console(width=140, record=True, color_system=None)
    console.print(display.render(snap, context, sent_per_s=3_110))
    screen = console.export_text()
    for expected in ("history 42 %", "11,212", "10,953", "3,110", "13,902 events, 678/s", "vitalstream-streams 18,985",
                     "urgent", "#0 (api) Blood pressure 186/124", "142 mg/dL → (in range)",
                     "http://127.0.0.1:38080/docs", "a@example.org", "http://127.0.0.1:39090", "docker compose up",
                     "refused", "cuff reads 186/124"):
        assert expected in screen, f"{expected!r} missing from:\n{screen}"
    line = display.line(snap, sent_per_s=3_110)
    assert "sent api 11,212, nightscout 10,953, kafka 9 (3,110/s)" in line and "tiers low 0 moderate 0 high 13" in line


def test_cli_registers_the_demo_with_its_options() -> None:
    result = subprocess.run([*vitalstream_command("demo", "--help")], capture_output=True, text=True, timeout=60,
                            env=_demo_environment(), check=False)
    assert result.returncode == 0, result.stderr
    for option in ("--users", "--days", "--duration", "--speed", "--seed"):
        assert option in result.stdout



def test_duration_ends_the_demo_by_itself(demo: DemoRun) -> None:
    # After the long run (which its fixture has ended): a short one that stops on its own, with no Ctrl-C.
    started = time.monotonic()
    result = subprocess.run([*vitalstream_command("demo"), "--users", "3", "--days", "0.05", "--duration", "8"],
                            capture_output=True, text=True, timeout=150, env=_demo_environment(), check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "--duration reached" in output and "demo stopped" in output, output
    assert not list((demo.settings.stack_dir / "run" / "demo").glob("*.pid")), output
    assert time.monotonic() - started < 120, output
