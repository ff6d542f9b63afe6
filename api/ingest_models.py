"""Ingest request models: each event contract minus what the server fills in, built from the contract itself.

The server sets `user_id` (from the credential), `source`, `received_at`, `schema_version` and the `type` tag;
`device_id` comes from the API key (or, with a bearer token, from the body); `event_id` is optional. The field
definitions (types, bounds, descriptions) are the contract's own, so the two cannot drift apart; the contract's
cross-field checks run when the event is built (`to_events`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, GetJsonSchemaHandler, ValidationError, create_model
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from api.deps import Principal, Via
from api.errors import ApiError, FieldProblem, problems, validation_error
from schemas.events import (
    BloodPressureReading,
    Event,
    ExerciseSession,
    GlucoseReading,
    HbA1cResult,
    IdStr,
    MealLogged,
)

MAX_BATCH = 1000
#: Fields the server fills in; a client may send user_id and device_id only to have them checked.
SERVER_FILLED = frozenset({"event_id", "user_id", "device_id", "source", "received_at", "schema_version", "type"})
#: device_id of events sent with a bearer token and no device_id in the body.
DEFAULT_APP_DEVICE_ID = "app"
#: Server-chosen event ids under an Idempotency-Key are derived from it, so a retry reuses them.
_IDEMPOTENT_IDS = uuid5(NAMESPACE_URL, "https://vitalstream.invalid/ingest/idempotency-key")


class IngestItem(BaseModel):
    """What every ingest item may carry besides its contract's fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID | None = Field(
        default=None, description="Your id for this event; sending it again within the TTL publishes nothing.")
    device_id: IdStr | None = Field(
        default=None, description="With a bearer token: which device measured it (default 'app'). With an API "
                                  "key it is the key's device; another value is refused.")
    user_id: IdStr | None = Field(
        default=None, description="Optional; the user is the credential's. A different value is refused (403).")


def request_model(contract: type[Event], name: str) -> type[IngestItem]:
    fields: dict[str, Any] = {field_name: (field.annotation, field)
                              for field_name, field in contract.model_fields.items()
                              if field_name not in SERVER_FILLED}
    return create_model(name, __base__=IngestItem, __doc__=f"{contract.__doc__} (request body)",
                        __module__=__name__, **fields)


GlucoseIn = request_model(GlucoseReading, "GlucoseIn")
BloodPressureIn = request_model(BloodPressureReading, "BloodPressureIn")
HbA1cIn = request_model(HbA1cResult, "HbA1cIn")
ExerciseIn = request_model(ExerciseSession, "ExerciseIn")
MealIn = request_model(MealLogged, "MealIn")


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


class _OneOrManySchema:
    """Documents the body as what it accepts: the object itself, or an array of them."""

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        array = handler(schema)
        return {"anyOf": [array["items"], array], "description": f"One object, or an array of up to {MAX_BATCH}."}


def batch_of(model: type[IngestItem]) -> Any:
    """One object or an array of 1 to MAX_BATCH objects; errors name items by index (a single object is item 0)."""
    return Annotated[list[model], BeforeValidator(_one_or_many),  # type: ignore[valid-type]
                     Field(min_length=1, max_length=MAX_BATCH), _OneOrManySchema()]


def _device_id(index: int, item: IngestItem, caller: Principal) -> str:
    if caller.via is Via.API_KEY:
        if item.device_id is not None and item.device_id != caller.device_id:
            raise ApiError(403, "forbidden", f"{index}.device_id: the API key's device is {caller.device_id}",
                           [FieldProblem(field=f"{index}.device_id", rule="must_match_api_key",
                                         message="the device is the API key's")])
        assert caller.device_id is not None
        return caller.device_id
    return item.device_id or DEFAULT_APP_DEVICE_ID


def to_events(contract: type[Event], items: Sequence[IngestItem], caller: Principal, received_at: datetime,
              idempotency_key: str | None = None) -> list[Event]:
    """Build contract events from request items; every contract violation is reported, by item index."""
    events: list[Event] = []
    found: list[FieldProblem] = []
    for index, item in enumerate(items):
        if item.user_id is not None and item.user_id != caller.user_id:
            raise ApiError(403, "forbidden", f"{index}.user_id: you can only send your own data",
                           [FieldProblem(field=f"{index}.user_id", rule="must_be_caller",
                                         message="must be absent or your own user id")])
        event_id = item.event_id or (uuid5(_IDEMPOTENT_IDS, f"{caller.user_id}|{idempotency_key}|{index}")
                                     if idempotency_key else uuid4())
        fields = item.model_dump(exclude={"event_id", "user_id", "device_id"}, exclude_none=True)
        try:
            events.append(contract.model_validate({
                **fields, "event_id": event_id, "user_id": caller.user_id,
                "device_id": _device_id(index, item, caller), "source": caller.source, "received_at": received_at,
            }))
        except ValidationError as error:
            found += problems(error.errors(include_url=False), prefix=(index,))
    if found:
        raise validation_error(found)
    return events
