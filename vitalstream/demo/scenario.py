"""Three scripted moments after the history, so that every path the pipeline has shows up in one short run.

1. A blood-pressure crisis measured now (186/124 mmHg) by person #0's cuff, through the API: the stream worker
   raises a hypertensive-crisis alert and the person's tier becomes urgent (a live reading; replayed history is
   too old to alert on).
2. A reading from a client still on an older contract, straight to Kafka: the stream worker cannot read it and
   sends it to the dead-letter topic (reason schema_invalid) instead of stopping.
3. A meal whose "photo" is a cut-off upload (not an image), stored and sent straight to Kafka (the API would
   refuse it with 415): the inference consumer sends it to the dead-letter topic (reason not_an_image) and goes
   on with the next photo.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from producers.client import EventProducer
from producers.photos import photo_ref
from schemas.events import MealLogged, MealSlot, Source
from schemas.topics import MEALS, READINGS
from vitalstream.demo.api_client import ApiClient
from vitalstream.demo.fleet import DemoUser, Device
from vitalstream.object_store import ObjectStore

log = logging.getLogger(__name__)

CRISIS_MMHG = (186, 124)
#: The bytes of an upload that was cut off before any of the image arrived.
NOT_A_PHOTO = b"upload interrupted: 0 of 48213 bytes received\n"


@dataclass(frozen=True)
class Moment:
    what: str
    expect: str


def play(fleet: list[DemoUser], api: ApiClient, producer: EventProducer, store: ObjectStore,
         now: datetime | None = None) -> list[Moment]:
    """Send the three moments; returns what was sent and what should follow, for the display."""
    now = now or datetime.now(UTC)
    person = fleet[0]
    moments = [crisis_reading(api, person, now), old_contract_reading(producer, fleet[-1], now),
               unreadable_photo(producer, store, fleet[-1], now)]
    producer.flush(30.0)
    for moment in moments:
        log.info("scripted moment", extra={"what": moment.what, "expect": moment.expect})
    return moments


def crisis_reading(api: ApiClient, person: DemoUser, now: datetime) -> Moment:
    systolic, diastolic = CRISIS_MMHG
    reading = {"occurred_at": (now - timedelta(minutes=1)).isoformat(), "systolic_mmhg": systolic,
               "diastolic_mmhg": diastolic, "pulse_bpm": 92, "arm": "left", "position": "sitting"}
    key = person.device_keys.get(Device.CUFF)
    headers = {"X-API-Key": key} if key else person.bearer()
    api.call("POST", "/v1/readings/bp", json=[reading], headers=headers)
    return Moment(f"person {person.label}: cuff reads {systolic}/{diastolic} mmHg now (POST /v1/readings/bp)",
                  "a hypertensive-crisis alert, tier urgent")


def old_contract_reading(producer: EventProducer, person: DemoUser, now: datetime) -> Moment:
    # What a client built against a pre-release contract would send: other field names, no unit, no version 1.
    legacy = {"schema_version": 0, "type": "glucose", "user_id": person.user_id, "device_id": "legacy-app",
              "timestamp": now.isoformat(), "mmol": 5.4}
    producer.produce(READINGS.name, json.dumps(legacy).encode(), key=person.user_id.encode())
    return Moment(f"person {person.label}: a reading on an old contract, straight to {READINGS.name}",
                  "a dead letter from the stream worker (schema_invalid)")


def unreadable_photo(producer: EventProducer, store: ObjectStore, person: DemoUser, now: datetime) -> Moment:
    event_id = uuid4()
    key = f"meal-photos/{person.user_id}/{event_id}.jpg"
    store.put(key, NOT_A_PHOTO)
    meal = MealLogged(event_id=event_id, user_id=person.user_id, device_id="demo-app", source=Source.SIMULATOR,
                      occurred_at=now - timedelta(minutes=2), received_at=now, meal_slot=MealSlot.SNACK,
                      photo=photo_ref(key, NOT_A_PHOTO))
    producer.send(MEALS, meal)
    return Moment(f"person {person.label}: a meal whose photo upload was cut off, to {MEALS.name}",
                  "a dead letter from the inference consumer (not_an_image)")

