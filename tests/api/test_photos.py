"""POST /v1/meals/photo against the real Kafka and TimescaleDB: checks, the stored object, the published event."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from PIL import ExifTags, Image

from api.app import create_app
from api.metrics import ApiMetrics
from api.routes.photos import MULTIPART_OVERHEAD_BYTES
from schemas.events import MealLogged, PhotoContentType, Source
from schemas.topics import MEALS
from tests.api.conftest import Account, AccountFactory, AppFactory, TailFactory, TopicTail
from tests.api.images import HTML, ORIENTATION_ROTATED, SVG, encode, png_bomb, with_gps
from vitalstream.config import Settings
from vitalstream.object_store import LocalObjectStore

pytestmark = pytest.mark.stack

AT = (datetime.now(UTC) - timedelta(minutes=20)).replace(microsecond=0)
FORM = {"meal_slot": "lunch", "occurred_at": AT.isoformat()}


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("objects")


@pytest.fixture(scope="module")
def photo_client(api_settings: Settings, store_dir: Path) -> Iterator[TestClient]:
    """The API with an object store of its own (a directory), started once for the module."""
    with TestClient(create_app(api_settings.model_copy(update={"object_store_dir": store_dir}))) as client:
        yield client


@pytest.fixture
def store(store_dir: Path) -> LocalObjectStore:
    return LocalObjectStore(store_dir)


def upload(client: TestClient, data: bytes, headers: dict[str, str], filename: str = "meal.jpg",
           content_type: str = "image/jpeg", **form: Any) -> Response:
    response: Response = client.post("/v1/meals/photo", files={"image": (filename, data, content_type)},
                                     data={**FORM, **form}, headers=headers)
    return response


def _error(response: Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def test_an_accepted_jpeg_is_stored_and_published_with_its_reference(
        photo_client: TestClient, account: Account, meals_tail: TopicTail, store: LocalObjectStore) -> None:
    data = encode("JPEG", size=(320, 240))
    response = upload(photo_client, data, account.auth, carbs_g="45", energy_kcal="520")

    assert response.status_code == 202, response.text
    body = response.json()
    (event_id,) = body["event_ids"]
    assert body["accepted"] == 1 and body["location_removed"] is False
    [meal] = meals_tail.events(account.user_id)
    assert isinstance(meal, MealLogged) and str(meal.event_id) == event_id
    assert (meal.user_id, meal.device_id, meal.source) == (account.user_id, "app", Source.APP)
    assert (meal.meal_slot.value, meal.occurred_at, meal.carbs_g, meal.energy_kcal) == ("lunch", AT, 45, 520)
    ref = meal.photo
    assert ref is not None and ref.model_dump(mode="json") == body["photo"]
    assert ref.object_key.startswith(f"meal-photos/{account.user_id}/{event_id}-") and ref.object_key.endswith(".jpg")
    assert (ref.content_type, ref.size_bytes) == (PhotoContentType.JPEG, len(data))
    stored = store.get(ref.object_key)
    assert stored == data, "no location metadata: the original bytes are kept"
    assert hashlib.sha256(stored).hexdigest() == ref.sha256


@pytest.mark.parametrize(("fmt", "content_type", "extension"), [("PNG", PhotoContentType.PNG, "png"),
                                                                ("WEBP", PhotoContentType.WEBP, "webp")])
def test_png_and_webp_are_accepted_whatever_the_declared_type(
        photo_client: TestClient, account: Account, store: LocalObjectStore, fmt: str,
        content_type: PhotoContentType, extension: str) -> None:
    data = encode(fmt)
    response = upload(photo_client, data, account.auth, filename="photo.bin", content_type="application/octet-stream")
    assert response.status_code == 202, response.text
    photo = response.json()["photo"]
    assert photo["content_type"] == content_type.value and photo["object_key"].endswith(f".{extension}")
    assert store.get(photo["object_key"]) == data


@pytest.mark.parametrize(("data", "detected"), [(SVG, "an SVG image"), (HTML, "an HTML document"),
                                                (encode("GIF"), "a GIF image"),
                                                (b"not a photo at all\n", "text")])
def test_other_content_named_jpg_is_415(photo_client: TestClient, account: Account, meals_tail: TopicTail,
                                        data: bytes, detected: str) -> None:
    response = upload(photo_client, data, account.auth, filename="meal.jpg", content_type="image/jpeg")
    assert response.status_code == 415, response.text
    error = _error(response)
    assert error["code"] == "unsupported_media_type"
    assert error["message"] == f"image: must be a JPEG, PNG or WebP image; the bytes are {detected}"
    assert [(f["field"], f["rule"]) for f in error["fields"]] == [("image", "image_format")]
    assert meals_tail.events(account.user_id) == []


def test_a_decompression_bomb_is_refused_for_its_header(photo_client: TestClient, account: Account,
                                                        meals_tail: TopicTail) -> None:
    bomb = png_bomb()
    assert len(bomb) < 200_000
    response = upload(photo_client, bomb, account.auth, filename="bomb.png", content_type="image/png")
    assert response.status_code == 413, response.text
    assert [(f["field"], f["rule"]) for f in _error(response)["fields"]] == [("image", "max_pixels")]
    assert "pixels" in _error(response)["message"]
    assert meals_tail.events(account.user_id) == []


def test_a_truncated_image_is_422(photo_client: TestClient, account: Account) -> None:
    data = encode("JPEG", size=(256, 256), noise=True)
    response = upload(photo_client, data[: len(data) // 2], account.auth)
    assert response.status_code == 422, response.text
    assert [(f["field"], f["rule"]) for f in _error(response)["fields"]] == [("image", "decodable")]


def test_a_photo_larger_than_the_general_body_limit_is_accepted(photo_client: TestClient, account: Account,
                                                                api_settings: Settings) -> None:
    data = encode("JPEG", size=(1200, 1200), noise=True, quality=95)
    assert api_settings.max_body_bytes < len(data) < api_settings.max_photo_bytes
    assert upload(photo_client, data, account.auth).status_code == 202


def test_oversized_photos_are_413(app_factory: AppFactory, account: Account, tmp_path: Path) -> None:
    small = app_factory(max_photo_bytes=50_000, object_store_dir=tmp_path)
    data = encode("JPEG", size=(256, 256), noise=True, quality=95)
    assert 50_000 < len(data) < 50_000 + MULTIPART_OVERHEAD_BYTES
    in_route = upload(small, data, account.auth)
    assert in_route.status_code == 413, in_route.text
    assert [(f["field"], f["rule"]) for f in _error(in_route)["fields"]] == [("image", "max_bytes")]
    # Past the route's body limit the middleware refuses it before any of it is parsed.
    too_big = upload(small, b"\xff\xd8\xff" + b"\0" * (50_000 + MULTIPART_OVERHEAD_BYTES), account.auth)
    assert too_big.status_code == 413
    assert _error(too_big)["code"] == "payload_too_large" and _error(too_big)["fields"] == []
    assert not any(tmp_path.rglob("*.jpg")), "nothing refused is stored"
    # Every other route keeps the general limit.
    other = small.post("/v1/meals", content=b"[" + b" " * 2_000_000 + b"]", headers=account.auth)
    assert other.status_code == 413


def test_gps_is_removed_before_the_photo_is_stored(photo_client: TestClient, account: Account,
                                                  store: LocalObjectStore, meals_tail: TopicTail) -> None:
    data = with_gps("JPEG")
    response = upload(photo_client, data, account.auth)

    assert response.status_code == 202, response.text
    assert response.json()["location_removed"] is True
    [meal] = meals_tail.events(account.user_id)
    assert meal.photo is not None
    stored = store.get(meal.photo.object_key)
    assert stored != data and hashlib.sha256(stored).hexdigest() == meal.photo.sha256
    assert meal.photo.size_bytes == len(stored)
    with Image.open(io.BytesIO(stored)) as image:
        exif = image.getexif()
        assert image.format == "JPEG"
    assert ExifTags.IFD.GPSInfo not in exif and exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert exif[ExifTags.Base.Orientation] == ORIENTATION_ROTATED


def test_a_device_key_uploads_for_its_own_user_and_device(photo_client: TestClient, account: Account,
                                                          device_key: str, meals_tail: TopicTail) -> None:
    response = upload(photo_client, encode("JPEG"), {"X-API-Key": device_key})
    assert response.status_code == 202, response.text
    [meal] = meals_tail.events(account.user_id)
    assert meal.source is Source.DEVICE and meal.device_id != "app"
    assert meal.photo is not None and meal.photo.object_key.startswith(f"meal-photos/{account.user_id}/")


def test_uploads_need_a_credential_and_are_the_callers_own(photo_client: TestClient,
                                                          account_factory: AccountFactory, tail: TailFactory) -> None:
    alice, bob = account_factory(), account_factory()
    assert upload(photo_client, encode("JPEG"), {}).status_code == 401
    assert upload(photo_client, encode("JPEG"), {"Authorization": "Bearer nope"}).status_code == 401
    assert upload(photo_client, encode("JPEG"), {"X-API-Key": "unknown"}).status_code == 401
    meals = tail(MEALS)
    forged = upload(photo_client, encode("JPEG"), bob.auth, user_id=alice.user_id)
    assert forged.status_code == 403, forged.text
    assert [f["field"] for f in _error(forged)["fields"]] == ["user_id"]
    assert meals.events(alice.user_id) == [] and meals.events(bob.user_id) == []


def test_form_fields_are_checked_by_the_meal_contract(photo_client: TestClient, account: Account) -> None:
    naive = upload(photo_client, encode("JPEG"), account.auth, occurred_at="2025-01-01T12:00:00")
    assert naive.status_code == 422 and _error(naive)["fields"][0]["field"] == "occurred_at"
    negative = upload(photo_client, encode("JPEG"), account.auth, energy_kcal="-5")
    assert negative.status_code == 422 and _error(negative)["fields"][0]["field"] == "energy_kcal"
    no_image = photo_client.post("/v1/meals/photo", data=FORM, headers=account.auth)
    assert no_image.status_code == 422 and _error(no_image)["fields"][0]["field"] == "image"


def test_resubmitting_an_event_id_publishes_once(photo_client: TestClient, account: Account,
                                                 meals_tail: TopicTail) -> None:
    event_id = str(uuid.uuid4())
    first = upload(photo_client, encode("JPEG"), account.auth, event_id=event_id)
    again = upload(photo_client, encode("JPEG"), account.auth, event_id=event_id)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json() and first.json()["event_ids"] == [event_id]
    assert [str(m.event_id) for m in meals_tail.events(account.user_id)] == [event_id]


def test_an_idempotency_key_replays_the_first_answer(photo_client: TestClient, account: Account,
                                                     meals_tail: TopicTail) -> None:
    headers = {**account.auth, "Idempotency-Key": uuid.uuid4().hex}
    first = upload(photo_client, encode("PNG"), headers)
    again = upload(photo_client, encode("PNG"), headers)
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    other_photo = upload(photo_client, encode("WEBP"), headers)
    assert other_photo.status_code == 422 and _error(other_photo)["code"] == "idempotency_key_reused"
    assert len(meals_tail.events(account.user_id)) == 1


def test_uploads_are_counted_in_the_ingest_metrics(photo_client: TestClient, account: Account) -> None:
    metrics: ApiMetrics = photo_client.app.state.metrics  # type: ignore[attr-defined]

    def count(outcome: str) -> float:
        return metrics.registry.get_sample_value("vitalstream_api_ingest_readings_total",
                                                 {"kind": "meal_photo", "outcome": outcome}) or 0.0

    accepted, rejected = count("accepted"), count("rejected")
    assert upload(photo_client, encode("JPEG"), account.auth).status_code == 202
    assert upload(photo_client, SVG, account.auth).status_code == 415
    assert (count("accepted") - accepted, count("rejected") - rejected) == (1, 1)
