"""Simulated events as what each path sends: API ingest items, photo uploads, Nightscout entries and treatments,
Kafka events.

Pure functions: no network. The API fills in user, device, source and receipt time itself, so API items carry
only the reading; a meal with a photo is a multipart upload (form fields and the image) for everyone; Nightscout
documents are shaped as xDrip+ uploads them; Kafka events get the person's account id as their user (and key).
Photo meals and Kafka events get event ids of their own, so that no two runs or people share one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from api.ingest_models import SERVER_FILLED
from producers.simulator import SimulatedEvent
from schemas.events import (
    BloodPressureReading,
    Event,
    ExerciseSession,
    GlucoseKind,
    GlucoseReading,
    HbA1cResult,
    MealLogged,
)
from schemas.topics import Topic
from vitalstream.demo.fleet import DemoUser, Device, Path

#: Namespace of the ids of events the demo sends straight to Kafka or as photo uploads:
#: uuid5(namespace, "<user id>|<simulator id>"), so a retried upload is the same event.
KAFKA_EVENT_IDS = UUID("9d4b8f0e-6a51-4c1b-8f57-2f0f3c6b7a10")
#: What xDrip+ calls itself in the `device` of its uploads.
XDRIP_CGM_DEVICE = "xDrip-DexcomG6"
XDRIP_METER_DEVICE = "xDrip-BluetoothMeter"

Credential = Device | Literal["app", "nightscout"]


@dataclass(frozen=True)
class Channel:
    """Where an item goes: an HTTP route with a credential, or (route None) a Kafka topic."""

    path: Path
    route: str | None
    credential: Credential | None

    @property
    def via(self) -> Path:
        """The way into the pipeline (photo meals go through the API, whatever the person's path)."""
        if self.route is None:
            return Path.KAFKA
        return Path.NIGHTSCOUT if self.route.startswith("/api/v1/") else Path.API


@dataclass(frozen=True)
class Upload:
    """One item: a JSON document for an HTTP route, form fields and a photo for the photo route, or an event for
    Kafka."""

    channel: Channel
    user: DemoUser
    document: dict[str, Any] | None = None
    event: Event | None = None
    topic: Topic | None = None
    photo: bytes | None = None


_GLUCOSE, _BP, _HBA1C, _EXERCISE, _MEALS = ("/v1/readings/glucose", "/v1/readings/bp", "/v1/readings/hba1c",
                                             "/v1/exercise", "/v1/meals")
NIGHTSCOUT_ENTRIES, NIGHTSCOUT_TREATMENTS = "/api/v1/entries", "/api/v1/treatments"
PHOTO_ROUTE = "/v1/meals/photo"
#: The meal fields a photo upload sends beside the image (the API's form fields).
_PHOTO_FORM_FIELDS = ("meal_slot", "occurred_at", "energy_kcal", "carbs_g", "protein_g", "fat_g")


def upload_for(item: SimulatedEvent, user: DemoUser, zone: ZoneInfo) -> Upload:
    """What `user`'s path sends for one simulated event (`zone`: the person's time zone, for treatments)."""
    event = item.event
    if isinstance(event, MealLogged) and item.photo is not None:
        return photo_upload(item, user)
    if user.path is Path.KAFKA:
        return kafka_upload(item, user)
    if user.path is Path.NIGHTSCOUT:
        if isinstance(event, GlucoseReading):
            return Upload(Channel(user.path, NIGHTSCOUT_ENTRIES, "nightscout"), user, nightscout_entry(event))
        if isinstance(event, MealLogged) and event.carbs_g:
            return Upload(Channel(user.path, NIGHTSCOUT_TREATMENTS, "nightscout"), user,
                          nightscout_carbs(event, zone))
    route, credential = _api_route(event)
    return Upload(Channel(user.path, route, credential), user, api_item(event))


def _api_route(event: Event) -> tuple[str, Credential]:
    if isinstance(event, GlucoseReading):
        return _GLUCOSE, Device.CGM if event.kind is GlucoseKind.CGM else Device.METER
    if isinstance(event, BloodPressureReading):
        return _BP, Device.CUFF
    if isinstance(event, ExerciseSession):
        return _EXERCISE, Device.WATCH
    if isinstance(event, HbA1cResult):
        return _HBA1C, "app"  # a lab result the person types into the app
    if isinstance(event, MealLogged):
        return _MEALS, "app"
    raise ValueError(f"event type {type(event).__name__}: no API route for it")


def api_item(event: Event) -> dict[str, Any]:
    """The ingest item: the event without what the server fills in (user, device, source, ids, receipt)."""
    item: dict[str, Any] = event.model_dump(mode="json", exclude=set(SERVER_FILLED), exclude_none=True)
    return item


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _utc_string(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def nightscout_entry(reading: GlucoseReading) -> dict[str, Any]:
    """An xDrip+ entry: `sgv` for a CGM value, `mbg` for a meter value; mg/dL, integer, as Nightscout stores them."""
    mg_dl = round(reading.glucose_mg_dl)
    when = {"date": _epoch_ms(reading.occurred_at), "dateString": _utc_string(reading.occurred_at),
            "sysTime": _utc_string(reading.occurred_at), "utcOffset": 0}
    if reading.kind is GlucoseKind.CGM:
        return {"type": "sgv", "sgv": mg_dl, **when, "direction": reading.trend.value if reading.trend else "NONE",
                "device": XDRIP_CGM_DEVICE, "filtered": mg_dl * 1000, "unfiltered": mg_dl * 1000, "rssi": 100,
                "noise": 1}
    return {"type": "mbg", "mbg": mg_dl, **when, "device": XDRIP_METER_DEVICE}


def nightscout_carbs(meal: MealLogged, zone: ZoneInfo) -> dict[str, Any]:
    """A carbs treatment; the time is written in the person's offset, from which the API takes the meal slot."""
    return {"eventType": "Snack Bolus" if meal.meal_slot.value == "snack" else "Meal Bolus",
            "carbs": meal.carbs_g, "created_at": meal.occurred_at.astimezone(zone).isoformat(timespec="seconds"),
            "enteredBy": "xdrip", "uuid": str(meal.event_id)}


def _own_event_id(item: SimulatedEvent, user: DemoUser) -> UUID:
    return uuid5(KAFKA_EVENT_IDS, f"{user.user_id}|{item.event.event_id}")


def photo_upload(item: SimulatedEvent, user: DemoUser) -> Upload:
    """A meal with its photo as the app uploads it: form fields (an event id of its own) and the image bytes."""
    event = item.event
    assert isinstance(event, MealLogged) and item.photo is not None
    fields = event.model_dump(mode="json", include=set(_PHOTO_FORM_FIELDS), exclude_none=True)
    form = {name: str(value) for name, value in fields.items()} | {"event_id": str(_own_event_id(item, user))}
    return Upload(Channel(user.path, PHOTO_ROUTE, "app"), user, form, photo=item.photo)


def kafka_upload(item: SimulatedEvent, user: DemoUser) -> Upload:
    """The simulator's event as the person's: their account id as user and key, an event id of its own."""
    event = item.event
    update: dict[str, Any] = {"user_id": user.user_id, "event_id": _own_event_id(item, user),
                              # The simulator names devices "<its user id>-cgm" and so on: keep the kind only.
                              "device_id": f"demo-{event.device_id.rsplit('-', 1)[-1]}"}
    return Upload(Channel(user.path, None, None), user, event=event.model_copy(update=update), topic=item.topic)
