"""The stream worker's per-user state: small frozen dataclasses, to and from JSON (the Faust tables' values).

Everything is keyed by event id, so applying an event twice changes nothing: a replay after a crash is
harmless by construction.

- CGM readings live in hour buckets, one table key per (user, hour): {event_id: [epoch_s, mg/dL]}. A bucket
  holds 12 readings of a 5-minute CGM, so every change is a small changelog record. Buckets whose hour ends
  14 days or more before the user's newest reading are deleted.
- Everything else about a user is one small record (`Vitals`): the last 7 days of blood pressure and
  exercise, the newest HbA1c, the newest glucose hour (where to look for buckets after a restart), the
  tier last published and the alerts already published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

HOUR_S = 3600
DAY_S = 86_400
GLUCOSE_RETENTION_S = 14 * DAY_S
BP_WINDOW_S = 7 * DAY_S
EXERCISE_WINDOW_S = 7 * DAY_S
#: Published alert ids are remembered this long (event time), so a replay does not publish them again.
ALERTED_RETENTION_S = 14 * DAY_S
DEFAULT_TIME_ZONE = "UTC"

FloatArray = npt.NDArray[np.float64]
#: event id -> (epoch seconds, glucose mg/dL)
Bucket = Mapping[str, tuple[float, float]]


def hour_of(epoch_s: float) -> int:
    """Index of the UTC hour an instant falls in (epoch seconds // 3600)."""
    return int(epoch_s // HOUR_S)


def bucket_key(user_id: str, hour: int) -> str:
    """Table key of a user's glucose bucket."""
    return f"{user_id}|{hour}"


@dataclass(frozen=True)
class GlucoseWindow:
    """A user's CGM readings of the last 14 days, by hour. Immutable, so its arrays are computed once."""

    buckets: Mapping[int, Bucket] = field(default_factory=dict)

    def newest(self) -> tuple[float, str] | None:
        """(epoch seconds, event id) of the newest reading (ties: the larger id); None when empty."""
        if not self.buckets:
            return None
        bucket = self.buckets[max(self.buckets)]
        return max((t, event_id) for event_id, (t, _) in bucket.items())

    def arrays(self) -> tuple[FloatArray, FloatArray, list[str]]:
        """Epoch seconds, mg/dL and event ids of every reading, sorted by (time, event id)."""
        return self._arrays

    @cached_property
    def _arrays(self) -> tuple[FloatArray, FloatArray, list[str]]:
        points = sorted(
            (t, event_id, mg_dl) for bucket in self.buckets.values() for event_id, (t, mg_dl) in bucket.items()
        )
        epoch_s = np.fromiter((p[0] for p in points), dtype=np.float64, count=len(points))
        mg_dl = np.fromiter((p[2] for p in points), dtype=np.float64, count=len(points))
        return epoch_s, mg_dl, [p[1] for p in points]


def bucket_to_json(bucket: Bucket) -> dict[str, list[float]]:
    return {event_id: [t, mg_dl] for event_id, (t, mg_dl) in bucket.items()}


def bucket_from_json(data: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    return {event_id: (float(t), float(mg_dl)) for event_id, (t, mg_dl) in data.items()}


@dataclass(frozen=True, slots=True)
class TierStatus:
    """The tier last published for a user and the rule codes behind it."""

    tier: str
    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Vitals:
    """Everything about a user except the glucose buckets (see the module doc)."""

    glucose_newest_hour: int | None = None
    #: event id -> (epoch s, systolic mmHg, diastolic mmHg), the 7 days up to the newest reading
    bp: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    #: event id -> (epoch s, minutes), the 7 days up to the newest session
    exercise: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: (event id, epoch s, %) of the newest result
    hba1c: tuple[str, float, float] | None = None
    tier: TierStatus | None = None
    #: alert id -> epoch s of its trigger
    alerted: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "glucose_newest_hour": self.glucose_newest_hour,
            "bp": {k: list(v) for k, v in self.bp.items()},
            "exercise": {k: list(v) for k, v in self.exercise.items()},
            "hba1c": list(self.hba1c) if self.hba1c is not None else None,
            "tier": {"tier": self.tier.tier, "codes": list(self.tier.codes)} if self.tier is not None else None,
            "alerted": dict(self.alerted),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Vitals:
        if not data:
            return cls()
        hba1c = data.get("hba1c")
        tier = data.get("tier")
        return cls(
            glucose_newest_hour=data.get("glucose_newest_hour"),
            bp={k: (float(t), float(s), float(d)) for k, (t, s, d) in (data.get("bp") or {}).items()},
            exercise={k: (float(t), float(m)) for k, (t, m) in (data.get("exercise") or {}).items()},
            hba1c=(str(hba1c[0]), float(hba1c[1]), float(hba1c[2])) if hba1c else None,
            tier=TierStatus(str(tier["tier"]), tuple(tier["codes"])) if tier else None,
            alerted={k: float(v) for k, v in (data.get("alerted") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class Profile:
    """A user's settings from the user-profiles topic; defaults when none arrived yet."""

    time_zone: str = DEFAULT_TIME_ZONE
    #: None: the deployment's default guideline
    bp_guideline: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"time_zone": self.time_zone, "bp_guideline": self.bp_guideline}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Profile:
        if not data:
            return cls()
        return cls(time_zone=str(data.get("time_zone") or DEFAULT_TIME_ZONE), bp_guideline=data.get("bp_guideline"))


@dataclass(frozen=True, slots=True)
class UserState:
    """What the steps read and return for one user."""

    window: GlucoseWindow = field(default_factory=GlucoseWindow)
    vitals: Vitals = field(default_factory=Vitals)
