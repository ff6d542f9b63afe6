"""The alert and recording rules pass promtool's checks and unit tests, and both Prometheus configs are valid.

promtool comes with the local stack's Prometheus (Debian's package): the `prometheus_url` fixture installs and
starts it, so these tests run promtool from the same install the stack uses.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stack.prometheus import PROMTOOL, RULES_DIR, Prometheus
from tests.monitoring.queries import REPO, rule_groups
from vitalstream.config import Settings

RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
RULE_TESTS = sorted((RULES_DIR / "tests").glob("*.yml"))
COMPOSE_CONFIG = REPO / "monitoring" / "prometheus" / "prometheus.yml"
COMPOSE_RULES_DIR = "/etc/prometheus/rules/"


@pytest.fixture(scope="module")
def promtool(prometheus_url: str) -> Path:
    assert PROMTOOL.exists(), f"{PROMTOOL} is missing although Prometheus runs at {prometheus_url}"
    return PROMTOOL


def _run(*args: str) -> str:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{output}"
    return output


def test_rule_files_exist_and_have_tests() -> None:
    assert RULE_FILES and RULE_TESTS


def test_promtool_accepts_the_rules(promtool: Path) -> None:
    output = _run(str(promtool), "check", "rules", *map(str, RULE_FILES))
    assert "SUCCESS" in output


def test_promtool_rule_unit_tests_pass(promtool: Path) -> None:
    output = _run(str(promtool), "test", "rules", *map(str, RULE_TESTS))
    assert "SUCCESS" in output


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    alerts = {rule["alert"] for group in rule_groups() for rule in group["rules"] if "alert" in rule}
    tested = set()
    for path in RULE_TESTS:
        text = path.read_text()
        tested |= {alert for alert in alerts if f"alertname: {alert}\n" in text}
    assert alerts - tested == set(), f"alerts without a unit test: {sorted(alerts - tested)}"


def test_every_alert_says_how_bad_what_and_where_to_look() -> None:
    problems = []
    for group in rule_groups():
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            if rule.get("labels", {}).get("severity") not in ("critical", "warning"):
                problems.append(f"{rule['alert']}: severity must be critical or warning")
            missing = {"summary", "description", "runbook"} - set(rule.get("annotations", {}))
            if missing:
                problems.append(f"{rule['alert']}: annotations {sorted(missing)} are missing")
    assert not problems, "\n".join(problems)


def test_rendered_local_config_is_valid(promtool: Path, tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(Prometheus(Settings(stack_dir=tmp_path / "stack")).rendered_config())
    output = _run(str(promtool), "check", "config", str(config))
    # The rules are found through the config, so a broken rule file fails this check too.
    assert f"{len(RULE_FILES)} rule files found" in output


def test_compose_config_is_valid_with_the_rules_where_compose_mounts_them(promtool: Path, tmp_path: Path) -> None:
    text = COMPOSE_CONFIG.read_text()
    assert COMPOSE_RULES_DIR in text, f"{COMPOSE_CONFIG} no longer loads rules from {COMPOSE_RULES_DIR}"
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace(COMPOSE_RULES_DIR, f"{RULES_DIR}/"))
    output = _run(str(promtool), "check", "config", str(config))
    assert f"{len(RULE_FILES)} rule files found" in output
