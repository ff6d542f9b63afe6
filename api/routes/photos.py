"""POST /v1/meals/photo: a meal with its photo, as multipart/form-data. The photo is checked (api.photo_checks),
stored in the object store, and the MealLogged event with its PhotoRef is published like any other ingest item.

The object is stored before the event is published, so no consumer ever sees a reference to a missing object.
Its key holds the start of its sha256, so objects are written once and never replaced: a resubmission with the
same event_id but another photo cannot change the photo an earlier event refers to.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, ValidationError

from api.acceptance import idempotency_key
from api.deps import IngestCaller, IntakeDep, ObjectStoreDep, Principal, SettingsDep
from api.errors import ApiError, ErrorResponse, FieldProblem, from_validation_error
from api.ingest_models import MealIn, to_events
from api.photo_checks import FIELD, CheckedPhoto, PhotoRefusedError, check_photo
from api.routes.ingest import Accepted, IdempotencyKeyHeader
from schemas.events import MealLogged, MealSlot, PhotoRef
from vitalstream.config import Settings
from vitalstream.object_store import ObjectStoreError

router = APIRouter(prefix="/v1", tags=["ingest"])

PATH = "/v1/meals/photo"
#: Room beside the image for the form's other fields and the multipart boundaries and part headers.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
#: Event ids chosen under an Idempotency-Key are derived from it, so a retry reuses the id (and the object key).
_IDEMPOTENT_IDS = uuid5(NAMESPACE_URL, "https://vitalstream.invalid/ingest/meal-photo/idempotency-key")
_STATUS_CODES = {413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_failed"}


def body_limit_bytes(settings: Settings) -> int:
    """The largest request body this route takes (the global limit is far smaller)."""
    return settings.max_photo_bytes + MULTIPART_OVERHEAD_BYTES


class PhotoAccepted(Accepted):
    photo: PhotoRef
    location_removed: bool


_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "No valid bearer token or API key"},
    403: {"model": ErrorResponse, "description": "A user_id (or an API key's device_id) that is not yours"},
    413: {"model": ErrorResponse, "description": "The photo has more bytes or pixels than the limits"},
    415: {"model": ErrorResponse, "description": "The image is not a JPEG, PNG or WebP (by its bytes)"},
    422: {"model": ErrorResponse, "description": "Invalid fields, or an image that does not decode"},
    429: {"model": ErrorResponse, "description": "Rate limit; see Retry-After"},
    503: {"model": ErrorResponse, "description": "The object store or Kafka failed; nothing was accepted"},
}


def _checked(image: UploadFile, settings: Settings) -> tuple[CheckedPhoto, str]:
    """The checked photo and the sha256 of the upload as sent (for the Idempotency-Key fingerprint)."""
    data = image.file.read(settings.max_photo_bytes + 1)  # one byte more than allowed is enough to refuse
    try:
        checked = check_photo(data, settings.max_photo_bytes, settings.max_photo_pixels)
    except PhotoRefusedError as refused:
        raise ApiError(refused.status_code, _STATUS_CODES[refused.status_code], refused.message,
                       [FieldProblem(field=FIELD, rule=refused.rule, message=refused.message)]) from refused
    return checked, hashlib.sha256(data).hexdigest()


@router.post(
    "/meals/photo", summary="A meal with its photo (multipart/form-data); the photo is analysed asynchronously",
    status_code=202, response_model=PhotoAccepted, responses=_RESPONSES,
    description="The image must be a JPEG, PNG or WebP (decided by its bytes, never by its name or declared "
                "type), at most VITALSTREAM_MAX_PHOTO_BYTES bytes and VITALSTREAM_MAX_PHOTO_PIXELS pixels. "
                "Location metadata (EXIF GPS, XMP, IPTC) is removed before it is stored; orientation is kept. "
                "The MealAnalyzed result appears on the meal-analyses topic and in the live events.")
def post_meal_photo(
    caller: IngestCaller, intake: IntakeDep, store: ObjectStoreDep, settings: SettingsDep, request: Request,
    image: Annotated[UploadFile, File(description="The photo: JPEG, PNG or WebP.")],
    meal_slot: Annotated[MealSlot, Form()],
    occurred_at: Annotated[AwareDatetime, Form(description="When the meal was eaten (ISO 8601 with an offset).")],
    event_id: Annotated[UUID | None, Form(
        description="Your id for this meal; sending it again within the TTL publishes nothing.")] = None,
    user_id: Annotated[str | None, Form(
        description="Optional; the user is the credential's. A different value is refused (403).")] = None,
    device_id: Annotated[str | None, Form(description="Which device took it (default 'app'); with an API key "
                                                      "it is the key's device.")] = None,
    energy_kcal: Annotated[float | None, Form(description="What you entered, if anything (kcal).")] = None,
    carbs_g: Annotated[float | None, Form(description="Carbohydrate you entered (g).")] = None,
    protein_g: Annotated[float | None, Form(description="Protein you entered (g).")] = None,
    fat_g: Annotated[float | None, Form(description="Fat you entered (g).")] = None,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    fields = {"meal_slot": meal_slot, "occurred_at": occurred_at, "user_id": user_id, "device_id": device_id,
              "energy_kcal": energy_kcal, "carbs_g": carbs_g, "protein_g": protein_g, "fat_g": fat_g}
    chosen_id = event_id or (uuid5(_IDEMPOTENT_IDS, f"{caller.user_id}|{key}") if key else uuid4())
    # The caller's rights and the contract first: a refused meal costs no image decoding and stores nothing.
    meal = _meal(fields, chosen_id, caller)
    photo, upload_sha256 = _checked(image, settings)

    digest = hashlib.sha256(photo.data).hexdigest()
    object_key = f"meal-photos/{caller.user_id}/{chosen_id}-{digest[:16]}.{photo.extension}"
    ref = PhotoRef(object_key=object_key, sha256=digest, content_type=photo.content_type,
                   size_bytes=len(photo.data))
    meal = meal.model_copy(update={"photo": ref})
    try:
        store.put(object_key, photo.data)
    except ObjectStoreError as error:
        raise ApiError(503, "object_store_unavailable", f"the photo could not be stored: {error}. Nothing was "
                       "accepted; retry the same request", headers={"Retry-After": "5"}) from error

    body = PhotoAccepted(accepted=1, event_ids=[chosen_id], photo=ref,
                         location_removed=photo.location_removed).model_dump(mode="json")
    fingerprint = idempotency_key(key, request.method, request.url.path,
                                  {**{name: value for name, value in fields.items() if value is not None},
                                   "event_id": event_id, "image_sha256": upload_sha256})
    reply = intake.submit(caller.user_id, [meal], 202, body, key=fingerprint,
                          remembered_ids={event_id} if event_id is not None else set())
    headers = {"Idempotent-Replayed": "true"} if reply.replayed else {}
    return JSONResponse(reply.body, status_code=reply.status_code, headers=headers)


def _meal(fields: dict[str, object], event_id: UUID, caller: Principal) -> MealLogged:
    """The event without its photo, built and checked as every ingest item is (errors name form fields)."""
    try:
        item = MealIn.model_validate({name: value for name, value in fields.items() if value is not None})
        events = to_events(MealLogged, [item.model_copy(update={"event_id": event_id})], caller, datetime.now(UTC))
    except ValidationError as error:
        raise from_validation_error(error) from error
    except ApiError as error:  # to_events names fields by batch index: this form is item 0
        raise ApiError(error.status_code, error.code, error.message.removeprefix("0."),
                       [problem.model_copy(update={"field": problem.field.removeprefix("0.")})
                        for problem in error.fields], error.headers) from error
    meal = events[0]
    assert isinstance(meal, MealLogged)
    return meal
