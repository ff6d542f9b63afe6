"""The README documents what the code reads, and every command explains itself."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.main import get_command

from api.app import create_app
from vitalstream.cli import app
from vitalstream.config import env_names

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    # Typer ships its own click; walk groups by shape rather than by class.
    if hasattr(command, "commands"):
        found = []
        for name, sub in command.commands.items():
            found += _commands(sub, (*path, name))
        return found
    return [(path, command)]


COMMANDS = _commands(get_command(app))


def test_readme_configuration_table_lists_every_setting() -> None:
    table = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", README, flags=re.MULTILINE))
    assert set(env_names().values()) <= table, set(env_names().values()) - table


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    assert "make demo" in README and "make test" in README
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert re.search(r"^exec make test$", ci, flags=re.MULTILINE)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_has_help_with_an_example(path: tuple[str, ...], command: Any) -> None:
    assert command.help, f"vitalstream {' '.join(path)} has no help"
    assert "Example:" in command.help, f"vitalstream {' '.join(path)} help has no Example:"


def test_cli_groups_are_listed_in_the_readme() -> None:
    groups = {p[0] for p, _ in COMMANDS}
    for group in groups:
        assert f"vitalstream {group}" in README, group


def test_typer_app_is_the_console_entry_point() -> None:
    assert isinstance(app, typer.Typer)


#: A row of the README's route table: | `METHOD` | `path` | who may call it | what it does |
_ROUTE_ROW = re.compile(r"^\| `([A-Z]+)` \| `([^`]+)` \| ([^|]+?) \| ([^|]+?) \|$", flags=re.MULTILINE)


def _readme_routes() -> dict[tuple[str, str], str]:
    start = README.index("\n### Routes\n")
    end = README.find("\n## ", start)
    rows = _ROUTE_ROW.findall(README[start:end if end != -1 else None])
    assert len(rows) == len({(method, path) for method, path, _, _ in rows}), "a route is listed twice"
    return {(method, path): who for method, path, who, _ in rows}


def _who(path: str, operation: dict[str, Any]) -> str:
    """Who may call an operation, from the credentials its OpenAPI document names."""
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    if not schemes:
        return "anyone"
    if path.startswith("/v1/users/{user_id}/"):
        return "patient, granted clinician, admin"  # api.access decides; the credential is a bearer token
    if path.startswith("/api/v1/"):
        return "Nightscout uploader"
    if "APIKeyHeader" in schemes:
        return "user or device"
    return "user"


def _app_routes() -> dict[tuple[str, str], str]:
    document = create_app().openapi()
    return {(method.upper(), path): _who(path, operation)
            for path, operations in document["paths"].items() for method, operation in operations.items()}


def test_readme_lists_every_api_route_and_no_other() -> None:
    listed, served = set(_readme_routes()), set(_app_routes())
    assert not served - listed, f"missing from the README's route table: {sorted(served - listed)}"
    assert not listed - served, f"in the README's route table but not served: {sorted(listed - served)}"


def test_readme_says_who_may_call_each_route() -> None:
    listed = _readme_routes()
    wrong = {route: (listed[route], who) for route, who in _app_routes().items() if listed.get(route, who) != who}
    assert not wrong, f"README says (listed, expected): {wrong}"
