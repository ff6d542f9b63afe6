"""Nightscout API v1, many users on one server: each user's secret says whose data an upload is.

Uploaders (xDrip+, Loop, …) are pointed at this server with the user's secret and need no change. Writes answer
200 with the uploaded documents and their `_id`, one per document sent, as Nightscout does (Loop checks the
count). Mapping rules: api.nightscout.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, BeforeValidator, Field

from api import nightscout
from api.deps import CurrentUser, EngineDep, IntakeDep, NightscoutCaller, Principal
from api.errors import ErrorResponse, invalid
from api.security import new_nightscout_secret, nightscout_lookup_hash
from schemas.events import GlucoseKind
from storage import accounts
from storage.nightscout import TimeRange, glucose_entries
from vitalstream import __version__

router = APIRouter(tags=["nightscout"])

MAX_COUNT = 10_000
_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong Nightscout secret"}}
_KINDS = {"sgv": [GlucoseKind.CGM.value], "mbg": [GlucoseKind.FINGERSTICK.value]}


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


Documents = Annotated[list[Any], BeforeValidator(_one_or_many),
                      Field(description="One Nightscout document or an array of them.")]


class NightscoutSecret(BaseModel):
    secret: str = Field(description="Shown once. Uploaders send its SHA-1 as `api-secret`; a new one replaces it.")
    base_url: str = Field(description="The Nightscout URL to give uploaders (Loop: site URL + this secret).")
    uploader_url: str = Field(description="xDrip+'s form: https://SECRET@host/api/v1/")


@router.post("/v1/nightscout/secret", status_code=201, tags=["nightscout"],
             summary="Create (or replace) your Nightscout API secret")
def create_secret(caller: CurrentUser, engine: EngineDep, request: Request) -> NightscoutSecret:
    secret = new_nightscout_secret()
    with engine.begin() as connection:
        accounts.set_nightscout_secret(connection, caller.user_id, nightscout_lookup_hash(secret), datetime.now(UTC))
    base_url = str(request.base_url)
    scheme, _, rest = base_url.partition("://")
    return NightscoutSecret(secret=secret, base_url=base_url, uploader_url=f"{scheme}://{secret}@{rest}api/v1/")


@router.get("/api/v1/status.json", summary="Server status, as Nightscout reports it", responses=_UNAUTHORIZED)
def status(caller: NightscoutCaller) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "status": "ok", "name": "VitalStream", "version": __version__,
        "serverTime": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "serverTimeEpoch": round(now.timestamp() * 1000),
        "apiEnabled": True, "careportalEnabled": True, "boluscalcEnabled": False,
        "settings": {"units": "mg/dl", "enable": ["careportal"], "authDefaultRoles": "denied"},
        "extendedSettings": {}, "authorized": {"sub": caller.user_id},
    }


@router.get("/api/v1/experiments/test", summary="Credential check (Loop calls it when a site is set up)",
            responses=_UNAUTHORIZED)
def experiments_test(caller: NightscoutCaller) -> dict[str, str]:
    return {"status": "ok"}


def _store(caller: Principal, intake: IntakeDep, mapped: list[nightscout.Mapped]) -> list[dict[str, Any]]:
    events = [event for m in mapped for event in m.events]
    documents = [m.document for m in mapped]
    # The event ids are derived from the documents, so remembering them makes a re-upload publish nothing.
    intake.submit(caller.user_id, events, 200, documents, remembered_ids={e.event_id for e in events})
    return documents


@router.post("/api/v1/entries", summary="Upload entries (sgv, mbg)", responses=_UNAUTHORIZED)
@router.post("/api/v1/entries.json", include_in_schema=False)
def upload_entries(body: Documents, caller: NightscoutCaller, intake: IntakeDep) -> list[dict[str, Any]]:
    received_at = datetime.now(UTC)
    return _store(caller, intake, [nightscout.map_entry(raw, index, caller.user_id, received_at)
                                   for index, raw in enumerate(body)])


@router.post("/api/v1/treatments", summary="Upload treatments (carbs, exercise, BG checks are kept)",
             responses=_UNAUTHORIZED)
@router.post("/api/v1/treatments.json", include_in_schema=False)
@router.put("/api/v1/treatments", include_in_schema=False)  # xDrip+ upserts treatments one by one
def upload_treatments(body: Documents, caller: NightscoutCaller, intake: IntakeDep) -> list[dict[str, Any]]:
    received_at = datetime.now(UTC)
    return _store(caller, intake, [nightscout.map_treatment(raw, index, caller.user_id, received_at)
                                   for index, raw in enumerate(body)])


@router.post("/api/v1/devicestatus", summary="Accepted and dropped (uploaders send it; VitalStream keeps none)",
             responses=_UNAUTHORIZED)
@router.post("/api/v1/devicestatus.json", include_in_schema=False)
def upload_devicestatus(body: Documents, caller: NightscoutCaller) -> list[dict[str, Any]]:
    return [raw if isinstance(raw, dict) else {"value": raw} for raw in body]


def _bound(value: str | None, field: str) -> datetime | None:
    """A find[...] bound: ms since the epoch, or an ISO 8601 time (what find[dateString] carries)."""
    if value is None:
        return None
    text = value.strip()
    try:
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text) / 1000, UTC)
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError) as error:
        raise invalid(f"query.{field}", "time_format", f"not ms since the epoch nor ISO 8601: {text!r}") from error
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _entries(caller: Principal, engine: EngineDep, kinds: list[str], count: int, bounds: dict[str, str | None]
             ) -> list[dict[str, Any]]:
    def pick(op: str) -> datetime | None:
        # find[date] and find[dateString] name the same instant; the date form wins when both are sent.
        for key in (f"find[date][${op}]", f"find[dateString][${op}]"):
            if bounds.get(key) is not None:
                return _bound(bounds[key], key)
        return None

    within = TimeRange(gte=pick("gte"), gt=pick("gt"), lte=pick("lte"), lt=pick("lt"))
    with engine.connect() as connection:
        rows = glucose_entries(connection, caller.user_id, kinds, count, within)
    return [nightscout.entry_document(row) for row in rows]


Count = Annotated[int, Query(ge=1, le=MAX_COUNT, description="How many, newest first.")]


class EntryFilters(BaseModel):
    model_config = {"populate_by_name": True}

    date_gte: str | None = Field(default=None, alias="find[date][$gte]")
    date_gt: str | None = Field(default=None, alias="find[date][$gt]")
    date_lte: str | None = Field(default=None, alias="find[date][$lte]")
    date_lt: str | None = Field(default=None, alias="find[date][$lt]")
    date_string_gte: str | None = Field(default=None, alias="find[dateString][$gte]")
    date_string_gt: str | None = Field(default=None, alias="find[dateString][$gt]")
    date_string_lte: str | None = Field(default=None, alias="find[dateString][$lte]")
    date_string_lt: str | None = Field(default=None, alias="find[dateString][$lt]")


Filters = Annotated[EntryFilters, Query()]


@router.get("/api/v1/entries.json", summary="Your glucose entries (sgv and mbg), newest first",
            responses=_UNAUTHORIZED)
@router.get("/api/v1/entries", include_in_schema=False)
def get_entries(caller: NightscoutCaller, engine: EngineDep, filters: Filters, count: Count = 10
                ) -> list[dict[str, Any]]:
    return _entries(caller, engine, _KINDS["sgv"] + _KINDS["mbg"], count, filters.model_dump(by_alias=True))


@router.get("/api/v1/entries/current.json", summary="Your latest sensor glucose entry", responses=_UNAUTHORIZED)
def get_current(caller: NightscoutCaller, engine: EngineDep) -> list[dict[str, Any]]:
    return _entries(caller, engine, _KINDS["sgv"], 1, {})


@router.get("/api/v1/entries/{kind}.json", summary="Your entries of one type, newest first",
            responses=_UNAUTHORIZED)
def get_entries_of_kind(kind: Literal["sgv", "mbg"], caller: NightscoutCaller, engine: EngineDep,
                        filters: Filters, count: Count = 10) -> list[dict[str, Any]]:
    return _entries(caller, engine, _KINDS[kind], count, filters.model_dump(by_alias=True))
