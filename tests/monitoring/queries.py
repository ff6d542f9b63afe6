"""The queries of the provisioned dashboards and of the alert rules, and how to run them outside Grafana."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO / "monitoring" / "grafana" / "dashboards"
RULES_DIR = REPO / "monitoring" / "rules"
README = REPO / "monitoring" / "README.md"

PROMETHEUS_UID = "prometheus"
TIMESCALEDB_UID = "timescaledb"


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    datasource_uid: str
    text: str

    @property
    def name(self) -> str:
        return f"{self.dashboard}: {self.panel} ({self.ref_id})"


def dashboards() -> dict[str, dict[str, Any]]:
    """File name → dashboard JSON, for every provisioned dashboard."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found += panel.get("panels", [])
    return found


def panel_queries() -> list[PanelQuery]:
    queries = []
    for file, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid", "")
                text = target.get("expr") if uid == PROMETHEUS_UID else target.get("rawSql")
                queries.append(PanelQuery(file, panel.get("title", ""), target.get("refId", ""), uid, text or ""))
    return queries


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        groups += yaml.safe_load(path.read_text()).get("groups", [])
    return groups


def rule_expressions() -> dict[str, str]:
    """Rule name (alert or record, numbered when repeated) → its PromQL."""
    found: dict[str, str] = {}
    for group in rule_groups():
        for rule in group["rules"]:
            name = rule.get("alert") or rule["record"]
            key = name if name not in found else f"{name}#{sum(k.startswith(name) for k in found)}"
            found[key] = rule["expr"]
    return found


def recorded_names() -> set[str]:
    return {rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule}


# -- Grafana's variables and macros, replaced by concrete values -------------------------------------------
#: Grafana's interval variables, as Prometheus durations.
PROMQL_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h"}


def promql_for_prometheus(expr: str) -> str:
    for variable, value in PROMQL_VARIABLES.items():
        expr = expr.replace(variable, value)
    if "$" in expr:
        raise ValueError(f"PromQL with a variable this test does not replace: {expr}")
    return expr


def _sql_time(moment: datetime) -> str:
    return f"'{moment.isoformat()}'"


def sql_for_postgres(sql: str, start: datetime, end: datetime, user: str) -> str:
    """Grafana's PostgreSQL macros and the `user` variable, expanded as Grafana expands them."""
    sql = re.sub(r"\$__timeFilter\(\s*([^)]+?)\s*\)",
                 lambda m: f"{m.group(1)} BETWEEN {_sql_time(start)} AND {_sql_time(end)}", sql)
    sql = sql.replace("$__timeFrom()", _sql_time(start)).replace("$__timeTo()", _sql_time(end))
    # A single-value text variable: Grafana doubles single quotes inside it.
    sql = sql.replace("$user", user.replace("'", "''")).replace("${user}", user.replace("'", "''"))
    if "$" in sql:
        raise ValueError(f"SQL with a macro or variable this test does not replace: {sql}")
    return sql


# -- metric names referenced by PromQL ---------------------------------------------------------------------
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset",
             "bool", "inf", "nan"}
_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression selects (functions, keywords, labels and durations left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def family(name: str) -> str:
    """The family a series name belongs to: a histogram's _bucket, _sum and _count are its own name."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name
