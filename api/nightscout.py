"""Nightscout API v1 payloads ↔ VitalStream events, as uploaders (xDrip+, Loop, Spike, …) send them.

Entries: `type` "sgv" (sensor, mg/dL) → a CGM GlucoseReading with the trend from `direction` (or Loop's numeric
`trend`); "mbg" (meter) → a fingerstick reading. Other types (xDrip+'s "cal") are acknowledged and dropped.
Time: `date` (ms since the epoch), else `dateString`/`sysTime` (ISO 8601).
Like Nightscout, an entry is identified by user + type + date: its event id is uuid5 of those, so an upload
sent twice yields the same event twice, which the pipeline keeps once.

Treatments: `carbs` > 0 → MealLogged; eventType "Exercise" with `duration` (min) → ExerciseSession;
"BG Check" with `glucose` → a fingerstick reading. Boluses, basals, notes and the rest are acknowledged and
dropped. The meal slot is taken from the local hour of the treatment's time as written (its UTC offset; a UTC
or epoch time gives the UTC hour), "Snack Bolus" being a snack.

Values that fail a contract (sensor error codes such as sgv 5, times from the future) are dropped with a log line
rather than refused: an uploader that gets an error resends the same batch for ever.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.errors import ApiError, FieldProblem, problems, validation_error
from schemas.codec import describe
from schemas.events import (
    Activity,
    Event,
    ExerciseSession,
    GlucoseKind,
    GlucoseReading,
    MealLogged,
    MealSlot,
    Source,
    Trend,
)
from schemas.units import GlucoseUnit

log = logging.getLogger(__name__)

NIGHTSCOUT_IDS = uuid5(NAMESPACE_URL, "https://vitalstream.invalid/nightscout")
DEFAULT_DEVICE_ID = "nightscout"

#: Nightscout's direction names, plus the spellings Loop uses for the last two.
DIRECTIONS: dict[str, Trend] = {t.value: t for t in Trend} | {
    "NotComputable": Trend.NOT_COMPUTABLE, "RateOutOfRange": Trend.RATE_OUT_OF_RANGE}
#: Dexcom's numeric trend (Loop sends it as `trend`), 1 = DoubleUp … 9 = RATE OUT OF RANGE.
TREND_CODES: dict[int, Trend] = dict(enumerate(
    (Trend.DOUBLE_UP, Trend.SINGLE_UP, Trend.FORTY_FIVE_UP, Trend.FLAT, Trend.FORTY_FIVE_DOWN, Trend.SINGLE_DOWN,
     Trend.DOUBLE_DOWN, Trend.NOT_COMPUTABLE, Trend.RATE_OUT_OF_RANGE), start=1))
CODES_BY_TREND: dict[Trend, int] = {trend: code for code, trend in TREND_CODES.items()}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _Lenient(BaseModel):
    # Uploaders add fields of their own (filtered, rssi, noise, delta, …) and send numbers as strings at times.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Entry(_Lenient):
    type: str | None = None
    date: float | None = None
    date_string: str | None = Field(default=None, alias="dateString")
    sys_time: str | None = Field(default=None, alias="sysTime")
    sgv: float | None = None
    mbg: float | None = None
    direction: str | None = None
    trend: int | str | None = None  # Dexcom changed it from a number to a string in 2021
    device: str | None = None


class Treatment(_Lenient):
    event_type: str | None = Field(default=None, alias="eventType")
    created_at: str | float | None = None
    timestamp: str | float | None = None
    date: float | None = None
    mills: float | None = None
    carbs: float | None = None
    duration: float | None = None
    glucose: float | None = None
    units: str | None = None
    entered_by: str | None = Field(default=None, alias="enteredBy")
    nightscout_id: str | None = Field(default=None, alias="_id")
    uuid: str | None = None
    sync_identifier: str | None = Field(default=None, alias="syncIdentifier")


@dataclass(frozen=True)
class Mapped:
    """One uploaded document: the events it became (maybe none) and the `_id` the uploader gets back."""

    document: dict[str, Any]
    document_id: str
    events: tuple[Event, ...]


def _problem(index: int, field: str, rule: str, message: str) -> ApiError:
    return validation_error([FieldProblem(field=f"{index}.{field}", rule=rule, message=message)])


def _parse_time(value: str | float, index: int, field: str) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):  # epoch ms sent as a string
        return datetime.fromtimestamp(float(text) / 1000, UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as error:
        raise _problem(index, field, "datetime_format", f"not an ISO 8601 time: {text!r}") from error
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _device_id(name: str | None) -> str:
    cleaned = _CONTROL.sub("", name or "").strip()[:128]
    return cleaned or DEFAULT_DEVICE_ID


def _validate(model: type[_Lenient], raw: Any, index: int) -> Any:
    if not isinstance(raw, dict):
        raise _problem(index, "(document)", "dict_type", "each document must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise validation_error(problems(error.errors(include_url=False), prefix=(index,))) from error


def _build(contract: type[Event], fields: dict[str, Any], what: str) -> Event | None:
    try:
        return contract.model_validate(fields)
    except ValidationError as error:
        log.warning("nightscout document dropped", extra={"what": what, "problems": describe(error)})
        return None


def _trend(entry: Entry) -> Trend | None:
    if entry.direction and entry.direction in DIRECTIONS:
        return DIRECTIONS[entry.direction]
    if isinstance(entry.trend, int):
        return TREND_CODES.get(entry.trend)
    if isinstance(entry.trend, str):
        return TREND_CODES.get(int(entry.trend)) if entry.trend.isdigit() else DIRECTIONS.get(entry.trend)
    return None


def map_entry(raw: Any, index: int, user_id: str, received_at: datetime) -> Mapped:
    entry: Entry = _validate(Entry, raw, index)
    kind = entry.type or ("sgv" if entry.sgv is not None else "mbg" if entry.mbg is not None else None)
    if kind is None:
        raise _problem(index, "type", "missing", "type is required (sgv or mbg) when neither sgv nor mbg is given")
    if entry.date is not None:
        occurred_at, date_ms = datetime.fromtimestamp(entry.date / 1000, UTC), round(entry.date)
    elif entry.date_string or entry.sys_time:
        field = "dateString" if entry.date_string else "sysTime"
        occurred_at = _parse_time(entry.date_string or entry.sys_time or "", index, field)
        date_ms = _epoch_ms(occurred_at)
    else:
        raise _problem(index, "date", "missing", "date (ms since the epoch) or dateString is required")
    event_id = uuid5(NIGHTSCOUT_IDS, f"{user_id}|{kind}|{date_ms}")
    document = {**raw, "_id": str(event_id)}
    if kind not in ("sgv", "mbg"):
        return Mapped(document, str(event_id), ())
    value = entry.sgv if kind == "sgv" else entry.mbg
    if value is None:
        raise _problem(index, kind, "missing", f"a {kind} entry needs a {kind} value (mg/dL)")
    event = _build(GlucoseReading, {
        "event_id": event_id, "user_id": user_id, "device_id": _device_id(entry.device),
        "source": Source.NIGHTSCOUT, "received_at": received_at, "occurred_at": occurred_at,
        "unit": GlucoseUnit.MG_DL, "value": float(value),
        "kind": GlucoseKind.CGM if kind == "sgv" else GlucoseKind.FINGERSTICK,
        "trend": _trend(entry) if kind == "sgv" else None,
    }, f"entry {index} ({kind})")
    return Mapped(document, str(event_id), (event,) if event else ())


def meal_slot(event_type: str | None, local_time: datetime) -> MealSlot:
    if event_type and "snack" in event_type.lower():
        return MealSlot.SNACK
    hour = local_time.hour
    if 5 <= hour < 11:
        return MealSlot.BREAKFAST
    if 11 <= hour < 16:
        return MealSlot.LUNCH
    if 17 <= hour < 22:
        return MealSlot.DINNER
    return MealSlot.SNACK


def _treatment_time(treatment: Treatment, index: int) -> datetime:
    for field, value in (("created_at", treatment.created_at), ("timestamp", treatment.timestamp),
                         ("date", treatment.date), ("mills", treatment.mills)):
        if value is not None and value != "":
            return _parse_time(value, index, field)
    raise _problem(index, "created_at", "missing", "created_at (ISO 8601) or timestamp is required")


def map_treatment(raw: Any, index: int, user_id: str, received_at: datetime) -> Mapped:
    treatment: Treatment = _validate(Treatment, raw, index)
    occurred_at = _treatment_time(treatment, index)
    event_type = (treatment.event_type or "").strip()
    # The uploader's own id when it has one, else Nightscout's identity of a treatment: type and time.
    identity = (treatment.sync_identifier or treatment.uuid or treatment.nightscout_id
                or f"{event_type}|{_epoch_ms(occurred_at)}")
    document_id = treatment.nightscout_id or str(uuid5(NIGHTSCOUT_IDS, f"{user_id}|treatment|{identity}"))
    envelope = {"user_id": user_id, "device_id": _device_id(treatment.entered_by), "source": Source.NIGHTSCOUT,
                "received_at": received_at, "occurred_at": occurred_at}

    def event_id(kind: str) -> UUID:
        return uuid5(NIGHTSCOUT_IDS, f"{user_id}|treatment|{kind}|{identity}")

    events: list[Event | None] = []
    if treatment.carbs is not None and treatment.carbs > 0:
        events.append(_build(MealLogged, {**envelope, "event_id": event_id("meal"), "carbs_g": treatment.carbs,
                                          "meal_slot": meal_slot(event_type, occurred_at)},
                             f"treatment {index} (carbs)"))
    if event_type.lower() == "exercise" and treatment.duration is not None and treatment.duration > 0:
        events.append(_build(ExerciseSession, {**envelope, "event_id": event_id("exercise"),
                                               "activity": Activity.OTHER, "duration_min": treatment.duration},
                             f"treatment {index} (exercise)"))
    if event_type.lower() == "bg check" and treatment.glucose is not None:
        unit = GlucoseUnit.MMOL_L if (treatment.units or "").lower().startswith("mmol") else GlucoseUnit.MG_DL
        events.append(_build(GlucoseReading, {**envelope, "event_id": event_id("glucose"), "unit": unit,
                                              "value": treatment.glucose, "kind": GlucoseKind.FINGERSTICK},
                             f"treatment {index} (BG check)"))
    return Mapped({**raw, "_id": document_id}, document_id, tuple(e for e in events if e is not None))


def entry_document(row: Any) -> dict[str, Any]:
    """A glucose_readings row as Nightscout returns an entry."""
    date_ms = _epoch_ms(row.occurred_at)
    when = row.occurred_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    value = round(row.glucose_mg_dl)
    document: dict[str, Any] = {"_id": str(row.event_id), "device": row.device_id, "date": date_ms, "mills": date_ms,
                                "dateString": when, "sysTime": when, "utcOffset": 0}
    if row.kind == GlucoseKind.CGM.value:
        document |= {"type": "sgv", "sgv": value}
        if row.trend:
            trend = Trend(row.trend)
            document |= {"direction": trend.value, "trend": CODES_BY_TREND[trend]}
    else:
        document |= {"type": "mbg", "mbg": value}
    return document
