"""Every panel query runs: PromQL against the real Prometheus of the local stack, SQL against a real TimescaleDB
with the schema migrated and a small population written (tests/monitoring/population.py).

Grafana's variables and macros are replaced as Grafana would ($__rate_interval, $__timeFilter(col), $user).
That PromQL returns data once services run is checked by the end-to-end demo test; here it must parse and run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from storage.migrate import scratch_database
from tests.monitoring import population
from tests.monitoring.queries import (
    PROMETHEUS_UID,
    TIMESCALEDB_UID,
    PanelQuery,
    panel_queries,
    promql_for_prometheus,
    rule_groups,
    sql_for_postgres,
)

PROMQL = [q for q in panel_queries() if q.datasource_uid == PROMETHEUS_UID]
SQL = [q for q in panel_queries() if q.datasource_uid == TIMESCALEDB_UID]
NOW = datetime.now(UTC)
IDENTIFIER = re.compile(r"user|device|event_id|email", re.IGNORECASE)


# -- Prometheus --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prometheus(prometheus_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=prometheus_url, timeout=10.0) as client:
        yield client


@pytest.mark.parametrize("query", PROMQL, ids=lambda q: q.name)
def test_promql_panel_runs_in_prometheus(prometheus: httpx.Client, query: PanelQuery) -> None:
    response = prometheus.get("/api/v1/query", params={"query": promql_for_prometheus(query.text)})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{query.name}: {body.get('error')}"


def test_prometheus_refuses_a_broken_query(prometheus: httpx.Client) -> None:
    # The test above would pass against anything that always says yes.
    response = prometheus.get("/api/v1/query", params={"query": "sum by (job) (rate(up[$__rate_interval"})
    assert response.status_code == 400 and response.json()["errorType"] == "bad_data"


def test_prometheus_loads_every_rule(prometheus: httpx.Client) -> None:
    # The server read the rules when it started: reload so it holds this checkout's files.
    assert prometheus.post("/-/reload").status_code == 200
    loaded = prometheus.get("/api/v1/rules").json()["data"]["groups"]
    names = {(g["name"], r["name"]) for g in loaded for r in g["rules"]}
    expected = {(g["name"], r.get("alert") or r["record"]) for g in rule_groups() for r in g["rules"]}
    assert expected <= names, f"rules Prometheus did not load: {sorted(expected - names)}"


# -- TimescaleDB -------------------------------------------------------------------------------------------
def _dsn(database_url: str) -> str:
    """The libpq form of a SQLAlchemy URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def population_dsn(database_url: str) -> Iterator[str]:
    """A database of its own, migrated to head, holding the test population; dropped afterwards."""
    with scratch_database(database_url, "monitoring_test") as url:
        engine = create_engine(url)
        with engine.begin() as connection:
            population.insert_population(connection, NOW)
        engine.dispose()
        yield _dsn(url)


def _run_sql(dsn: str, query: PanelQuery) -> tuple[list[str], list[tuple[Any, ...]]]:
    window = population.time_range(NOW)
    sql = sql_for_postgres(query.text, window.start, window.end, population.PATIENT)
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        # Grafana's data source connects read-only in practice; a dashboard must never write.
        connection.read_only = True
        cursor.execute(sql)
        columns = [column.name for column in cursor.description or []]
        return columns, cursor.fetchall()


@pytest.mark.parametrize("query", SQL, ids=lambda q: q.name)
def test_sql_panel_returns_rows(population_dsn: str, query: PanelQuery) -> None:
    columns, rows = _run_sql(population_dsn, query)
    assert rows, f"{query.name}: no rows for the test population"
    if query.dashboard == "vitalstream-population.json":
        named = [c for c in columns if IDENTIFIER.search(c)]
        assert not named, f"{query.name}: a population panel returns identifying columns {named}"
        if "people" in columns:
            counts = [row[columns.index("people")] for row in rows]
            assert min(counts) >= 5, f"{query.name}: a group of fewer than 5 people is shown: {counts}"


def _population_panel(title: str) -> PanelQuery:
    return next(q for q in SQL if q.dashboard == "vitalstream-population.json" and q.panel == title)


@pytest.mark.parametrize(("title", "expected"), [
    ("Risk tiers", population.EXPECTED_TIERS),
    ("Time in range, 14 days", population.EXPECTED_TIR_BANDS),
    ("Blood pressure categories", population.EXPECTED_BP_CATEGORIES),
])
def test_population_groups_below_five_people_are_left_out(population_dsn: str, title: str,
                                                          expected: list[tuple[str, int]]) -> None:
    _, rows = _run_sql(population_dsn, _population_panel(title))
    assert [(str(label), int(count)) for label, count in rows] == expected


def test_clinician_view_shows_only_the_chosen_person(population_dsn: str) -> None:
    glucose = next(q for q in SQL if q.dashboard == "vitalstream-patient.json" and q.panel == "Glucose")
    _, rows = _run_sql(population_dsn, glucose)
    assert len(rows) == 192  # the patient's two days of CGM, nobody else's

    other = PanelQuery(glucose.dashboard, glucose.panel, glucose.ref_id, glucose.datasource_uid,
                       glucose.text.replace("$user", "monitoring-person-02"))
    _, rows = _run_sql(population_dsn, other)
    assert rows == []


def test_user_variable_cannot_break_out_of_its_quotes(population_dsn: str) -> None:
    glucose = next(q for q in SQL if q.dashboard == "vitalstream-patient.json" and q.panel == "Glucose")
    window = population.time_range(NOW)
    sql = sql_for_postgres(glucose.text, window.start, window.end, "x' OR '1'='1")
    with psycopg.connect(population_dsn) as connection:
        assert connection.execute(sql).fetchall() == []


def test_there_are_queries_of_both_kinds() -> None:
    # An empty parametrisation would skip the tests above instead of failing them.
    assert len(PROMQL) >= 30 and len(SQL) >= 15
