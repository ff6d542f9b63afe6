"""Simulated devices: physiologically plausible glucose, blood pressure, HbA1c, exercise and meals."""

from producers.simulator.generator import default_start, simulate
from producers.simulator.user import SimulatedEvent

__all__ = ["SimulatedEvent", "default_start", "simulate"]
