"""Pages of raw readings, newest first, with keyset cursors: a page costs the same however deep it is."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from fastapi import Query
from pydantic import BaseModel, Field

from api.access import SharedRoutes, SubjectDep
from api.deps import EngineDep
from api.errors import invalid
from storage.queries import ReadingKind, readings_page

routes = SharedRoutes("readings")
routers = routes.routers

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
_CURSOR_SEPARATOR = "|"


class ReadingItem(BaseModel):
    event_id: UUID
    occurred_at: datetime
    device_id: str
    source: str


class GlucoseItem(ReadingItem):
    glucose_mg_dl: float
    kind: str
    meal_context: str
    trend: str | None


class BloodPressureItem(ReadingItem):
    systolic_mmhg: int
    diastolic_mmhg: int
    pulse_bpm: int | None
    arm: str | None
    position: str | None


class HbA1cItem(ReadingItem):
    hba1c_pct: float


class ExerciseItem(ReadingItem):
    activity: str
    duration_min: float
    energy_kcal: float | None
    steps: int | None
    mean_heart_rate_bpm: int | None


class MealItem(ReadingItem):
    meal_slot: str
    energy_kcal: float | None
    carbs_g: float | None
    protein_g: float | None
    fat_g: float | None
    photo_sha256: str | None
    photo_content_type: str | None
    photo_size_bytes: int | None


Item = TypeVar("Item", bound=ReadingItem)


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last.")


ITEM_MODELS: dict[ReadingKind, type[ReadingItem]] = {
    ReadingKind.GLUCOSE: GlucoseItem,
    ReadingKind.BP: BloodPressureItem,
    ReadingKind.HBA1C: HbA1cItem,
    ReadingKind.EXERCISE: ExerciseItem,
    ReadingKind.MEALS: MealItem,
}
_TITLES = {ReadingKind.GLUCOSE: "Glucose readings", ReadingKind.BP: "Blood-pressure readings",
           ReadingKind.HBA1C: "HbA1c results", ReadingKind.EXERCISE: "Exercise sessions", ReadingKind.MEALS: "Meals"}


def encode_cursor(occurred_at: datetime, event_id: UUID) -> str:
    raw = f"{occurred_at.isoformat()}{_CURSOR_SEPARATOR}{event_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The (occurred_at, event_id) key a cursor stands for; 422 on anything this API did not give out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, event_id = raw.partition(_CURSOR_SEPARATOR)
        occurred_at = datetime.fromisoformat(at)
        key = (occurred_at, UUID(event_id))
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise invalid("query.cursor", "cursor", "not a cursor from a previous page's next_cursor") from error
    if occurred_at.tzinfo is None:
        raise invalid("query.cursor", "cursor", "not a cursor from a previous page's next_cursor")
    return key


CursorQuery = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page.")]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]


def _page(kind: ReadingKind, subject: SubjectDep, engine: EngineDep, cursor: str | None,
          limit: int) -> dict[str, Any]:
    before = decode_cursor(cursor) if cursor else None
    with engine.connect() as connection:
        rows = readings_page(connection, kind, subject.user_id, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    model = ITEM_MODELS[kind]
    items = [model.model_validate(dict(row._mapping)) for row in rows]
    last = rows[-1] if rows else None
    return {"items": items,
            "next_cursor": encode_cursor(last.occurred_at, last.event_id) if more and last is not None else None}


def _handler(kind: ReadingKind) -> Callable[..., dict[str, Any]]:
    def list_readings(subject: SubjectDep, engine: EngineDep, cursor: CursorQuery = None,
                      limit: LimitQuery = DEFAULT_LIMIT) -> dict[str, Any]:
        return _page(kind, subject, engine, cursor, limit)

    list_readings.__name__ = f"list_{kind.value}"
    return list_readings


for _kind, _model in ITEM_MODELS.items():
    routes.get(f"/readings/{_kind.value}", summary=f"{_TITLES[_kind]}, newest first, a page at a time",
               response_model=Page[_model])(_handler(_kind))  # type: ignore[valid-type]
