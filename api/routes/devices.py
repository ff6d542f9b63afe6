"""Device API keys: create (the key is shown once), list, revoke."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.deps import CurrentUser, EngineDep
from api.errors import ErrorResponse, not_found
from api.security import new_api_key, sha256_hex
from storage import accounts
from storage.accounts import DeviceKey

router = APIRouter(prefix="/v1/devices", tags=["devices"])


class DeviceKind(StrEnum):
    CGM = "cgm"
    GLUCOSE_METER = "glucose_meter"
    BP_MONITOR = "bp_monitor"
    WEARABLE = "wearable"
    PHONE = "phone"
    UPLOADER = "uploader"
    OTHER = "other"


class DeviceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    kind: DeviceKind


class DevicePublic(BaseModel):
    device_id: str = Field(description="The events' device_id when this key sends them.")
    name: str
    kind: DeviceKind
    created_at: datetime

    @classmethod
    def of(cls, device: DeviceKey) -> DevicePublic:
        return cls(device_id=device.id, name=device.name, kind=DeviceKind(device.kind), created_at=device.created_at)


class DeviceCreated(DevicePublic):
    api_key: str = Field(description="Send as `X-API-Key`. Shown this once; only its hash is stored.")


@router.post("", status_code=201, summary="Register a device and get its API key (shown once)")
def create_device(body: DeviceCreate, caller: CurrentUser, engine: EngineDep) -> DeviceCreated:
    api_key = new_api_key()
    with engine.begin() as connection:
        device = accounts.create_device_key(connection, caller.user_id, body.name, body.kind.value,
                                            sha256_hex(api_key), datetime.now(UTC))
    return DeviceCreated(**DevicePublic.of(device).model_dump(), api_key=api_key)


@router.get("", summary="Your devices with active keys")
def list_devices(caller: CurrentUser, engine: EngineDep) -> list[DevicePublic]:
    with engine.connect() as connection:
        return [DevicePublic.of(d) for d in accounts.list_device_keys(connection, caller.user_id)]


@router.delete("/{device_id}", status_code=204, summary="Revoke a device's key (at once, for every request after)",
               responses={404: {"model": ErrorResponse, "description": "You have no active device with this id"}})
def revoke_device(device_id: str, caller: CurrentUser, engine: EngineDep) -> Response:
    with engine.begin() as connection:
        revoked = accounts.revoke_device_key(connection, caller.user_id, device_id, datetime.now(UTC))
    if not revoked:
        raise not_found(f"you have no active device {device_id}")
    return Response(status_code=204)
