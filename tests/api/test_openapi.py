"""The OpenAPI document (from `vitalstream api openapi`, no service needed): every operation has a summary and
a described success response; results routes exist under /v1/me and /v1/users/{user_id}."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from typer.testing import CliRunner

from vitalstream.cli.api import app

NO_SERVICES = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/x"}
RESULTS = ("/summary", "/metrics/glucose", "/daily", "/weekly", "/agp", "/agp.png", "/rankings/{metric}", "/events",
           "/readings/glucose", "/readings/bp", "/readings/hba1c", "/readings/exercise", "/readings/meals")
#: Successes that are not JSON, by path suffix → content type.
NOT_JSON = {"/agp.png": "image/png", "/events": "text/event-stream", "/metrics": CONTENT_TYPE_LATEST}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    result = CliRunner().invoke(app, ["openapi"], env=NO_SERVICES)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in spec["paths"].items() for method, operation in item.items()]


def test_the_results_routes_are_documented(spec: dict[str, Any]) -> None:
    for suffix in RESULTS:
        assert f"/v1/me{suffix}" in spec["paths"], suffix
        assert f"/v1/users/{{user_id}}{suffix}" in spec["paths"], suffix
    assert "/metrics" in spec["paths"]


def test_every_operation_has_a_summary_and_a_described_success(spec: dict[str, Any]) -> None:
    for path, method, operation in _operations(spec):
        assert operation.get("summary"), (method, path)
        successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert successes, (method, path)
        for code, response in successes.items():
            if code == "204":
                continue
            content = response.get("content", {})
            expected = next((media for suffix, media in NOT_JSON.items() if path.endswith(suffix)), None)
            if expected is not None:
                assert expected in content, (method, path, content)
            else:
                assert content["application/json"]["schema"], (method, path)


def test_results_responses_have_models(spec: dict[str, Any]) -> None:
    for path, _, operation in _operations(spec):
        suffix = path.removeprefix("/v1/me").removeprefix("/v1/users/{user_id}")
        if suffix not in RESULTS or path.endswith(tuple(NOT_JSON)):
            continue
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in schema, path  # a named model, not an anonymous object
        assert {"401", "404"} <= set(operation["responses"]), path
