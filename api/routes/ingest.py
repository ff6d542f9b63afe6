"""Ingest: readings, exercise and meals → Kafka. 202 once the broker has acknowledged every event of the request.

Nothing is written to the database here except idempotency bookkeeping; the stream workers store the events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.acceptance import MAX_IDEMPOTENCY_KEY_CHARS, idempotency_key
from api.deps import IngestCaller, IntakeDep, Principal
from api.errors import ErrorResponse
from api.ingest_models import (
    MAX_BATCH,
    BloodPressureIn,
    ExerciseIn,
    GlucoseIn,
    HbA1cIn,
    IngestItem,
    MealIn,
    batch_of,
    to_events,
)
from schemas.events import BloodPressureReading, Event, ExerciseSession, GlucoseReading, HbA1cResult, MealLogged

router = APIRouter(prefix="/v1", tags=["ingest"])

if TYPE_CHECKING:
    GlucoseBatch = list[IngestItem]
    BloodPressureBatch = list[IngestItem]
    HbA1cBatch = list[IngestItem]
    ExerciseBatch = list[IngestItem]
    MealBatch = list[IngestItem]
else:  # the request models are built from the contracts at import time
    GlucoseBatch = batch_of(GlucoseIn)
    BloodPressureBatch = batch_of(BloodPressureIn)
    HbA1cBatch = batch_of(HbA1cIn)
    ExerciseBatch = batch_of(ExerciseIn)
    MealBatch = batch_of(MealIn)

IdempotencyKeyHeader = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=MAX_IDEMPOTENCY_KEY_CHARS,
    description="Any unique string (e.g. a UUID). Repeating the request with it replays the first response and "
                "publishes nothing again.")]


class Accepted(BaseModel):
    accepted: int
    event_ids: list[UUID]


_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "No valid bearer token or API key"},
    403: {"model": ErrorResponse, "description": "A body user_id (or an API key's device_id) that is not yours"},
    413: {"model": ErrorResponse, "description": "The body is over the size limit"},
    422: {"model": ErrorResponse, "description": f"Invalid events, an empty batch or more than {MAX_BATCH}"},
    429: {"model": ErrorResponse, "description": "Rate limit; see Retry-After"},
    503: {"model": ErrorResponse, "description": "Kafka did not acknowledge the events; nothing was accepted"},
}


def _ingest(contract: type[Event], items: Sequence[IngestItem], caller: Principal, intake: IntakeDep,
            request: Request, key: str | None) -> JSONResponse:
    events = to_events(contract, items, caller, datetime.now(UTC), key)
    body = Accepted(accepted=len(events), event_ids=[e.event_id for e in events]).model_dump(mode="json")
    fingerprint = idempotency_key(key, request.method, request.url.path,
                                  [item.model_dump(mode="json") for item in items])
    reply = intake.submit(caller.user_id, events, 202, body, key=fingerprint,
                          remembered_ids={item.event_id for item in items if item.event_id is not None})
    headers = {"Idempotent-Replayed": "true"} if reply.replayed else {}
    return JSONResponse(reply.body, status_code=reply.status_code, headers=headers)


@router.post("/readings/glucose", summary="Glucose readings (CGM, meter, lab)",
             status_code=202, response_model=Accepted, responses=_RESPONSES)
def post_glucose(body: GlucoseBatch, caller: IngestCaller, intake: IntakeDep, request: Request,
                 key: IdempotencyKeyHeader = None) -> JSONResponse:
    return _ingest(GlucoseReading, body, caller, intake, request, key)


@router.post("/readings/bp", summary="Blood-pressure readings",
             status_code=202, response_model=Accepted, responses=_RESPONSES)
def post_blood_pressure(body: BloodPressureBatch, caller: IngestCaller, intake: IntakeDep, request: Request,
                        key: IdempotencyKeyHeader = None) -> JSONResponse:
    return _ingest(BloodPressureReading, body, caller, intake, request, key)


@router.post("/readings/hba1c", summary="HbA1c results",
             status_code=202, response_model=Accepted, responses=_RESPONSES)
def post_hba1c(body: HbA1cBatch, caller: IngestCaller, intake: IntakeDep, request: Request,
               key: IdempotencyKeyHeader = None) -> JSONResponse:
    return _ingest(HbA1cResult, body, caller, intake, request, key)


@router.post("/exercise", summary="Exercise sessions",
             status_code=202, response_model=Accepted, responses=_RESPONSES)
def post_exercise(body: ExerciseBatch, caller: IngestCaller, intake: IntakeDep, request: Request,
                  key: IdempotencyKeyHeader = None) -> JSONResponse:
    return _ingest(ExerciseSession, body, caller, intake, request, key)


@router.post("/meals", summary="Meals (a photo is uploaded separately and referenced)",
             status_code=202, response_model=Accepted, responses=_RESPONSES)
def post_meals(body: MealBatch, caller: IngestCaller, intake: IntakeDep, request: Request,
               key: IdempotencyKeyHeader = None) -> JSONResponse:
    return _ingest(MealLogged, body, caller, intake, request, key)
