"""The README documents what the code reads, and every command explains itself."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.main import get_command

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
    table = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.MULTILINE))
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
