"""`vitalstream simulate`: drive simulated devices."""

from __future__ import annotations


def simulate() -> None:
    """Not written yet."""
    raise NotImplementedError
