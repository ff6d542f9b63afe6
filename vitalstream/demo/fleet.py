"""The demo's simulated people: an account each, and the credentials their devices upload with.

Person i takes one of three paths into the pipeline (round robin, so every path is used from 3 people on):
- `api`: CGM, meter, cuff and watch each with a device key (X-API-Key); meals and HbA1c from the app (bearer token);
- `nightscout`: an xDrip+-style uploader sends CGM and meter values to /api/v1/entries and carbs to
  /api/v1/treatments with the Nightscout secret; cuff and watch use device keys, the app a bearer token;
- `kafka`: the simulator's own path, straight to the topics with the project's producer.
Meals with a photo go through the API's photo upload (POST /v1/meals/photo, bearer token) for everyone, as an app
sends them; the API stores the photo and publishes the meal.

Each run signs up a new cohort (e-mails demo-<run>-<i>@example.org), so runs never mix their simulated data.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from vitalstream.demo.api_client import ApiClient, DemoError

log = logging.getLogger(__name__)

#: Every demo account's password (local demo data only); shown in the display to try the API docs with.
DEMO_PASSWORD = "vitalstream-demo"
#: Concurrent sign-ups: registering and signing in hash a password (argon2), which the API does in threads.
SIGN_UP_THREADS = 4


class Path(StrEnum):
    """How a person's data enters the pipeline."""

    API = "api"
    NIGHTSCOUT = "nightscout"
    KAFKA = "kafka"


PATH_ORDER = (Path.API, Path.NIGHTSCOUT, Path.KAFKA)


class Device(StrEnum):
    """A device that uploads with its own API key; the value is the simulator's device suffix."""

    CGM = "cgm"
    METER = "meter"
    CUFF = "cuff"
    WATCH = "watch"


#: The API's device kind for each.
DEVICE_KINDS = {Device.CGM: "cgm", Device.METER: "glucose_meter", Device.CUFF: "bp_monitor", Device.WATCH: "wearable"}
#: Which devices get a key, by path (Nightscout people upload glucose through their uploader instead).
DEVICES_BY_PATH = {Path.API: (Device.CGM, Device.METER, Device.CUFF, Device.WATCH),
                   Path.NIGHTSCOUT: (Device.CUFF, Device.WATCH), Path.KAFKA: ()}


@dataclass
class DemoUser:
    index: int
    email: str
    user_id: str
    path: Path
    access_token: str
    device_keys: dict[Device, str] = field(default_factory=dict)
    #: SHA-1 (hex) of the Nightscout secret: what uploaders send as `api-secret`.
    nightscout_api_secret: str | None = None

    @property
    def label(self) -> str:
        """Short, for the display: the person's number and path."""
        return f"#{self.index} ({self.path.value})"

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def path_of(index: int) -> Path:
    return PATH_ORDER[index % len(PATH_ORDER)]


def email_of(run_id: str, index: int) -> str:
    return f"demo-{run_id}-{index:03d}@example.org"


def sign_in(api: ApiClient, email: str) -> str:
    """A fresh access token (they live 15 minutes by default; callers sign in again on 401)."""
    tokens = api.call("POST", "/v1/auth/token", data={"username": email, "password": DEMO_PASSWORD})
    token: str = tokens["access_token"]
    return token


def sign_up(api: ApiClient, run_id: str, index: int, time_zone: str) -> DemoUser:
    """Register person `index`, sign in, set their time zone, and create what their path needs (device keys,
    Nightscout secret)."""
    email = email_of(run_id, index)
    registered = api.call("POST", "/v1/auth/register", json={"email": email, "password": DEMO_PASSWORD})
    user = DemoUser(index=index, email=email, user_id=registered["id"], path=path_of(index),
                    access_token=sign_in(api, email))
    # Before any reading: the stream worker counts days in this zone once it has applied the profile.
    api.call("PUT", "/v1/me/profile", headers=user.bearer(), json={"time_zone": time_zone, "bp_guideline": None})
    for device in DEVICES_BY_PATH[user.path]:
        created = api.call("POST", "/v1/devices", headers=user.bearer(),
                           json={"name": f"demo {device.value}", "kind": DEVICE_KINDS[device]})
        user.device_keys[device] = created["api_key"]
    if user.path is Path.NIGHTSCOUT:
        secret = api.call("POST", "/v1/nightscout/secret", headers=user.bearer())["secret"]
        user.nightscout_api_secret = hashlib.sha1(secret.encode()).hexdigest()  # Nightscout's scheme, not ours
    return user


def sign_up_fleet(api: ApiClient, run_id: str, time_zones: Sequence[str],
                  on_done: Callable[[DemoUser], None] | None = None) -> list[DemoUser]:
    """Sign up one person per time zone given, a few at a time; returns them in index order."""
    def one(index: int) -> DemoUser:
        user = sign_up(api, run_id, index, time_zones[index])
        if on_done is not None:
            on_done(user)
        return user

    with ThreadPoolExecutor(SIGN_UP_THREADS, thread_name_prefix="demo-sign-up") as pool:
        fleet = list(pool.map(one, range(len(time_zones))))
    if not fleet:
        raise DemoError("users: the demo needs at least one person")
    log.info("fleet signed up", extra={"users": len(fleet), "run": run_id})
    return fleet
