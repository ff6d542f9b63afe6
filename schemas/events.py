"""Event contracts, version 1: one envelope, one small model per event kind, each tagged by `type`.

Numbers are strict (no silent coercion of "120" to 120), unknown fields are rejected, timestamps must carry
a time zone, and impossible values fail with a message naming the field and the bound.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationInfo, field_validator

from schemas.timestamps import Timestamp
from schemas.units import GlucoseUnit, HbA1cUnit, glucose_to_mg_dl, hba1c_to_pct

SCHEMA_VERSION: Literal[1] = 1

# Physiological bounds: values outside are device faults or unit mix-ups, never readings.
GLUCOSE_MIN_MG_DL = 10.0
GLUCOSE_MAX_MG_DL = 1000.0
HBA1C_MIN_PCT = 3.0
HBA1C_MAX_PCT = 20.0
SYSTOLIC_MIN_MMHG, SYSTOLIC_MAX_MMHG = 50, 300
DIASTOLIC_MIN_MMHG, DIASTOLIC_MAX_MMHG = 20, 200
PULSE_MIN_BPM, PULSE_MAX_BPM = 20, 250
HEART_RATE_MIN_BPM, HEART_RATE_MAX_BPM = 25, 250
#: A device clock may run a little fast; a reading from further in the future than this is rejected.
MAX_CLOCK_SKEW = timedelta(minutes=10)

_ID_PATTERN = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")
IdStr = Annotated[str, Field(min_length=1, max_length=128, pattern=_ID_PATTERN.pattern)]
# Numbers are strict: "120" or true is a wrong type, not a number to be guessed at.
Number = Annotated[float, Strict()]
Count = Annotated[int, Strict()]


class Source(StrEnum):
    """Where an event entered the system."""

    DEVICE = "device"
    APP = "app"
    API = "api"
    NIGHTSCOUT = "nightscout"
    IMPORT = "import"
    SIMULATOR = "simulator"


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """The envelope every event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID = Field(default_factory=uuid4, description="Unique id; writes are keyed by it (idempotent).")
    user_id: IdStr = Field(description="Whose data this is; the Kafka message key.")
    device_id: IdStr = Field(description="Which device, app or uploader produced it.")
    source: Source
    # received_at comes first so that occurred_at's check can see it.
    received_at: Timestamp = Field(default_factory=_now, description="When VitalStream accepted it.")
    occurred_at: Timestamp = Field(description="When it happened (time-zone aware).")
    schema_version: Literal[1] = SCHEMA_VERSION

    @field_validator("occurred_at")
    @classmethod
    def _not_from_the_future(cls, occurred_at: datetime, info: ValidationInfo) -> datetime:
        received_at = info.data.get("received_at")
        if received_at is not None and occurred_at > received_at + MAX_CLOCK_SKEW:
            raise ValueError(
                f"occurred_at {occurred_at.isoformat()} is later than received_at "
                f"{received_at.isoformat()} by more than {MAX_CLOCK_SKEW}"
            )
        return occurred_at


def _bounded(field: str, value: float, low: float, high: float, unit: str, hint: str = "") -> None:
    if not low <= value <= high:
        raise ValueError(f"{field} must be within {low:g}–{high:g} {unit}, got {value:g} {unit}{hint}")


class GlucoseKind(StrEnum):
    CGM = "cgm"
    FINGERSTICK = "fingerstick"
    LAB = "lab"


class MealContext(StrEnum):
    """When a glucose value was taken relative to meals (the original log kept these)."""

    FASTING = "fasting"
    BEFORE_MEAL = "before_meal"
    AFTER_MEAL = "after_meal"
    BEDTIME = "bedtime"
    UNKNOWN = "unknown"


class Trend(StrEnum):
    """CGM trend arrow, with Nightscout's names."""

    DOUBLE_UP = "DoubleUp"
    SINGLE_UP = "SingleUp"
    FORTY_FIVE_UP = "FortyFiveUp"
    FLAT = "Flat"
    FORTY_FIVE_DOWN = "FortyFiveDown"
    SINGLE_DOWN = "SingleDown"
    DOUBLE_DOWN = "DoubleDown"
    NOT_COMPUTABLE = "NOT COMPUTABLE"
    RATE_OUT_OF_RANGE = "RATE OUT OF RANGE"


class GlucoseReading(Event):
    """A glucose value from a CGM, a meter or a lab, in the unit it was taken in."""

    type: Literal["glucose"] = "glucose"
    unit: GlucoseUnit
    value: Number = Field(description="In `unit`; see `glucose_mg_dl` for the value the system uses.")
    kind: GlucoseKind
    meal_context: MealContext = MealContext.UNKNOWN
    trend: Trend | None = None

    @field_validator("value")
    @classmethod
    def _plausible(cls, value: float, info: ValidationInfo) -> float:
        unit = info.data.get("unit")
        if unit is None:  # the unit failed validation itself; its own error says why
            return value
        mg_dl = glucose_to_mg_dl(value, unit)
        hint = ""
        # A mix-up is likely when the same number would be plausible in the other unit.
        as_if_mmol_l = glucose_to_mg_dl(value, GlucoseUnit.MMOL_L)
        if unit is GlucoseUnit.MG_DL and mg_dl < GLUCOSE_MIN_MG_DL and as_if_mmol_l >= GLUCOSE_MIN_MG_DL:
            hint = " (is the unit mmol/L?)"
        elif unit is GlucoseUnit.MMOL_L and mg_dl > GLUCOSE_MAX_MG_DL and value <= GLUCOSE_MAX_MG_DL:
            hint = " (is the unit mg/dL?)"
        _bounded("glucose", mg_dl, GLUCOSE_MIN_MG_DL, GLUCOSE_MAX_MG_DL, "mg/dL", hint)
        return value

    @property
    def glucose_mg_dl(self) -> float:
        """The value in mg/dL (mmol/L × 18.01559)."""
        return glucose_to_mg_dl(self.value, self.unit)


class Arm(StrEnum):
    LEFT = "left"
    RIGHT = "right"


class BodyPosition(StrEnum):
    SITTING = "sitting"
    STANDING = "standing"
    LYING = "lying"


class BloodPressureReading(Event):
    """One cuff measurement."""

    type: Literal["blood_pressure"] = "blood_pressure"
    systolic_mmhg: Count = Field(ge=SYSTOLIC_MIN_MMHG, le=SYSTOLIC_MAX_MMHG)
    diastolic_mmhg: Count = Field(ge=DIASTOLIC_MIN_MMHG, le=DIASTOLIC_MAX_MMHG)
    pulse_bpm: Count | None = Field(default=None, ge=PULSE_MIN_BPM, le=PULSE_MAX_BPM)
    arm: Arm | None = None
    position: BodyPosition | None = None

    @field_validator("diastolic_mmhg")
    @classmethod
    def _below_systolic(cls, diastolic_mmhg: int, info: ValidationInfo) -> int:
        systolic = info.data.get("systolic_mmhg")
        if systolic is not None and diastolic_mmhg >= systolic:
            raise ValueError(
                f"diastolic_mmhg must be lower than systolic_mmhg, got {diastolic_mmhg} ≥ {systolic} mmHg"
            )
        return diastolic_mmhg


class HbA1cResult(Event):
    """A laboratory or point-of-care HbA1c."""

    type: Literal["hba1c"] = "hba1c"
    unit: HbA1cUnit
    value: Number

    @field_validator("value")
    @classmethod
    def _plausible(cls, value: float, info: ValidationInfo) -> float:
        unit = info.data.get("unit")
        if unit is not None:
            _bounded("hba1c", hba1c_to_pct(value, unit), HBA1C_MIN_PCT, HBA1C_MAX_PCT, "%")
        return value

    @property
    def hba1c_pct(self) -> float:
        """The value in NGSP/DCCT %."""
        return hba1c_to_pct(self.value, self.unit)


class Activity(StrEnum):
    WALKING = "walking"
    RUNNING = "running"
    CYCLING = "cycling"
    SWIMMING = "swimming"
    STRENGTH = "strength"
    YOGA = "yoga"
    OTHER = "other"


class ExerciseSession(Event):
    """An exercise session; `occurred_at` is its start."""

    type: Literal["exercise"] = "exercise"
    activity: Activity
    duration_min: Number = Field(gt=0, le=24 * 60)
    energy_kcal: Number | None = Field(default=None, ge=0, le=10_000)
    steps: Count | None = Field(default=None, ge=0, le=200_000)
    mean_heart_rate_bpm: Count | None = Field(default=None, ge=HEART_RATE_MIN_BPM, le=HEART_RATE_MAX_BPM)

    @property
    def ended_at(self) -> datetime:
        return self.occurred_at + timedelta(minutes=self.duration_min)


class MealSlot(StrEnum):
    BREAKFAST = "breakfast"
    LUNCH = "lunch"
    DINNER = "dinner"
    SNACK = "snack"


class PhotoContentType(StrEnum):
    JPEG = "image/jpeg"
    PNG = "image/png"
    WEBP = "image/webp"


MAX_PHOTO_BYTES = 10 * 1024 * 1024


class PhotoRef(BaseModel):
    """Where a meal photo lies in the object store. The bytes never travel through Kafka."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    object_key: str = Field(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9._/-]+$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_type: PhotoContentType
    size_bytes: Count = Field(gt=0, le=MAX_PHOTO_BYTES)


class MealLogged(Event):
    """A meal, with what the user entered and optionally a photo to analyse."""

    type: Literal["meal"] = "meal"
    meal_slot: MealSlot
    energy_kcal: Number | None = Field(default=None, ge=0, le=10_000)
    carbs_g: Number | None = Field(default=None, ge=0, le=1_500)
    protein_g: Number | None = Field(default=None, ge=0, le=1_500)
    fat_g: Number | None = Field(default=None, ge=0, le=1_500)
    photo: PhotoRef | None = None


Reading = Annotated[
    GlucoseReading | BloodPressureReading | HbA1cResult | ExerciseSession,
    Field(discriminator="type"),
]
"""What travels on the readings topic."""

CONTRACTS: tuple[type[Event], ...] = (GlucoseReading, BloodPressureReading, HbA1cResult, ExerciseSession, MealLogged)
