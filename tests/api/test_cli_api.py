"""`vitalstream api`: the OpenAPI document and role changes (serving is exercised by the compose file)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from storage.accounts import Role, user_by_email
from tests.api.conftest import Account
from vitalstream.cli.api import app

runner = CliRunner()


def test_openapi_prints_the_spec_without_any_service() -> None:
    result = runner.invoke(app, ["openapi"], env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
                                                  "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/x"})
    assert result.exit_code == 0, result.output
    spec = json.loads(result.output)
    assert spec["info"]["title"] == "VitalStream API"
    for path in ("/v1/auth/token", "/v1/devices", "/v1/readings/glucose", "/v1/meals", "/api/v1/entries",
                 "/api/v1/entries.json", "/healthz", "/readyz"):
        assert path in spec["paths"], path
    assert {"OAuth2PasswordBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])


def test_set_role_makes_an_admin(account: Account, engine: Engine, database_url: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    from vitalstream.config import get_settings

    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["set-role", account.email, "admin"])
        unknown = runner.invoke(app, ["set-role", "nobody-at-all@example.org", "admin"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"{account.email} is now admin" in result.output
    assert unknown.exit_code != 0 and "no account" in unknown.output
    with engine.connect() as connection:
        user = user_by_email(connection, account.email)
    assert user is not None and user.role is Role.ADMIN
