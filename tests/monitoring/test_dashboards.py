"""The provisioned dashboards are valid Grafana dashboards, use the provisioned data sources, and keep people's
data where it belongs: aggregates with a k-anonymity threshold on the population dashboard, one person at a time
on the clinician view."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.monitoring.dashboard_schema import known_panel_types, validate
from tests.monitoring.queries import (
    PROMETHEUS_UID,
    REPO,
    TIMESCALEDB_UID,
    dashboards,
    panel_queries,
    panels,
)

DASHBOARDS = dashboards()
PROVISIONING = REPO / "monitoring" / "grafana" / "provisioning"
#: The smallest group a population figure may describe.
K_ANONYMITY = 5


def test_the_three_dashboards_are_there() -> None:
    uids = {d["uid"] for d in DASHBOARDS.values()}
    assert uids == {"vitalstream-pipeline", "vitalstream-population", "vitalstream-patient"}


@pytest.mark.parametrize("file", DASHBOARDS)
def test_dashboard_fits_grafanas_models(file: str) -> None:
    problems = validate(DASHBOARDS[file])
    assert not problems, "\n".join(problems)


def test_the_schema_check_catches_mistakes() -> None:
    # The check itself must fail on what Grafana would silently ignore or refuse.
    dashboard: dict[str, Any] = {
        "title": "t", "uid": "u", "schemaVersion": 41, "graphTooltip": 7,
        "panels": [{"type": "timeseries", "id": 1, "title": "p", "gridPos": {"h": "8", "w": 12, "x": 0, "y": 0},
                    "options": {"legnd": {}, "legend": {"placement": "middle", "displayMode": "list",
                                                        "showLegend": True, "calcs": []}},
                    "fieldConfig": {"defaults": {"custom": {"drawStyle": "zigzag"}}, "overrides": []},
                    "datasource": {"type": "prometheus", "uid": "prometheus"},
                    "targets": [{"refId": "A", "exprr": "up", "range": "yes"}]}],
    }
    problems = "\n".join(validate(dashboard))
    for expected in ("graph_tooltip: 7", "grid_pos.h: '8' is not an integer", "options.legnd: not part of",
                     "placement: 'middle'", "draw_style: 'zigzag'", "targets[0].exprr: not part of",
                     "range_val: 'yes' is not a boolean"):
        assert expected in problems


@pytest.mark.parametrize("file", DASHBOARDS)
def test_panels_are_known_types_with_unique_ids_on_the_grid(file: str) -> None:
    found = panels(DASHBOARDS[file])
    ids = [p["id"] for p in found]
    assert len(ids) == len(set(ids)), f"{file}: panel ids repeat"
    unknown = {p["type"] for p in found} - known_panel_types() - {"row"}
    assert not unknown, f"{file}: panel types Grafana's models do not know: {unknown}"
    for panel in found:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{file}: {panel['title']} runs off the 24-column grid"
        if panel["type"] not in ("row", "text"):
            assert panel.get("targets"), f"{file}: {panel['title']} has no query"
            assert panel.get("description"), f"{file}: {panel['title']} does not say what it shows"


def _provisioned_uids() -> set[str]:
    config = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
    return {source["uid"] for source in config["datasources"]}


def test_every_query_uses_a_provisioned_data_source() -> None:
    assert {PROMETHEUS_UID, TIMESCALEDB_UID} <= _provisioned_uids()
    for query in panel_queries():
        assert query.datasource_uid in (PROMETHEUS_UID, TIMESCALEDB_UID), query.name
        assert query.text.strip(), f"{query.name}: empty query"


def test_pipeline_dashboard_reads_prometheus_only() -> None:
    uids = {q.datasource_uid for q in panel_queries() if q.dashboard == "vitalstream-pipeline.json"}
    assert uids == {PROMETHEUS_UID}


def _population_sql() -> list[tuple[str, str]]:
    return [(q.name, q.text) for q in panel_queries() if q.dashboard == "vitalstream-population.json"]


def test_population_queries_only_show_groups_of_at_least_k_people() -> None:
    queries = _population_sql()
    assert len(queries) >= 6
    for name, sql in queries:
        thresholds = [int(n) for n in re.findall(r"HAVING\s+count\([^)]*\)\s*>=\s*(\d+)", sql, flags=re.IGNORECASE)]
        assert thresholds, f"{name}: an aggregate without a HAVING count(...) >= {K_ANONYMITY} threshold"
        assert min(thresholds) >= K_ANONYMITY, f"{name}: threshold below {K_ANONYMITY}"


def test_clinician_view_shows_one_person_chosen_by_hand() -> None:
    dashboard = DASHBOARDS["vitalstream-patient.json"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    # A text box: a query variable would list every user id to whoever opens the dashboard.
    assert variables["user"]["type"] == "textbox"
    for query in panel_queries():
        if query.dashboard == "vitalstream-patient.json":
            assert "user_id = '$user'" in query.text, f"{query.name}: not filtered to the chosen person"
