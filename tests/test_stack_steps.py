"""Long setup steps: real subprocesses, their output, progress and failures."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from stack.base import StackError
from stack.steps import percent_progress, run_step


def test_output_goes_to_the_log_and_progress_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "step.log"
    script = "for p in (0, 5, 12, 40, 100): print(f'[{p:3d}%] Building C object x.o')"
    with caplog.at_level(logging.INFO, logger="stack.steps"):
        seconds = run_step([sys.executable, "-c", script], "build", log=log, progress=percent_progress(10))
    assert seconds > 0
    assert log.read_text().count("Building C object") == 5
    assert [r.getMessage() for r in caplog.records] == [
        "build: started", "build: 0%", "build: 12%", "build: 40%", "build: 100%",
        f"build: done in {seconds:.1f} s"]


def test_failure_names_the_step_and_shows_the_last_output(tmp_path: Path) -> None:
    script = "import sys; print('fetching'); print('E: Unable to locate package nope'); sys.exit(100)"
    with pytest.raises(StackError, match=r"(?s)fetch failed \(exit 100\).*Unable to locate package nope.*step\.log"):
        run_step([sys.executable, "-c", script], "fetch", log=tmp_path / "step.log")


def test_missing_program_is_a_clear_error() -> None:
    with pytest.raises(StackError, match="command not found: vitalstream-no-such-program"):
        run_step(["vitalstream-no-such-program"], "nothing")
