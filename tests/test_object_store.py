"""The object stores: a local directory, and S3 against a real S3-compatible server (moto_server, started here)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from inference_consumer.dead_letters import DeadLetterReason
from inference_consumer.photos import PhotoRejectedError, load_photo
from producers.photos import photo_ref, render_meal_photo
from vitalstream.config import Settings
from vitalstream.object_store import (
    InvalidObjectKeyError,
    LocalObjectStore,
    ObjectNotFoundError,
    ObjectStore,
    ObjectStoreError,
    S3ObjectStore,
    object_store,
    parse_s3_url,
    s3_client,
)

BAD_KEYS = ["/etc/passwd", "a/../../b", "a//b", "./a", ""]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto_server, an S3-compatible HTTP server, on a free port for this module."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    moto_server = Path(sys.executable).with_name("moto_server")
    with log.open("wb") as out:
        process = subprocess.Popen([str(moto_server), "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and region as a deployment sets them (moto accepts any)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def bucket(s3_endpoint: str, aws_env: None) -> str:
    name = f"photos-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """Each store, to run the same contract tests on both."""
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    endpoint: str = request.getfixturevalue("s3_endpoint")
    name: str = request.getfixturevalue("bucket")
    return S3ObjectStore(s3_client(endpoint), name, "tenant-a/")


def test_put_get_and_size_round_trip(store: ObjectStore) -> None:
    data = render_meal_photo(seed=1)
    store.put("meal-photos/u1/e1.jpg", data)
    assert store.get("meal-photos/u1/e1.jpg") == data
    assert store.size("meal-photos/u1/e1.jpg") == len(data)
    store.put("meal-photos/u1/e1.jpg", data)  # the same bytes again: harmless
    store.put("meal-photos/u1/e1.jpg", b"other")
    assert store.get("meal-photos/u1/e1.jpg") == b"other"


def test_a_missing_key_is_a_clear_error(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match=r"object 'meal-photos/nobody/none\.jpg': not in "):
        store.get("meal-photos/nobody/none.jpg")
    with pytest.raises(ObjectNotFoundError):
        store.size("meal-photos/nobody/none.jpg")


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_refused_by_every_store(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidObjectKeyError, match="object_key: must be a relative path"):
        store.put(key, b"x")
    with pytest.raises(InvalidObjectKeyError):
        store.get(key)


def test_the_s3_store_keeps_objects_under_its_prefix(s3_endpoint: str, bucket: str) -> None:
    client = s3_client(s3_endpoint)
    S3ObjectStore(client, bucket, "tenant-a/").put("meal-photos/x.jpg", b"abc")
    assert client.get_object(Bucket=bucket, Key="tenant-a/meal-photos/x.jpg")["Body"].read() == b"abc"
    with pytest.raises(ObjectNotFoundError):
        S3ObjectStore(client, bucket, "tenant-b/").get("meal-photos/x.jpg")


def test_a_missing_bucket_is_an_object_store_error(s3_endpoint: str, aws_env: None) -> None:
    missing = S3ObjectStore(s3_client(s3_endpoint), "no-such-bucket-here", "")
    with pytest.raises(ObjectStoreError, match="NoSuchBucket"):
        missing.put("a.jpg", b"x")


def test_the_factory_follows_the_settings(s3_endpoint: str, bucket: str, tmp_path: Path) -> None:
    local = object_store(Settings(object_store_dir=tmp_path))
    assert isinstance(local, LocalObjectStore) and local.root == tmp_path
    remote = object_store(Settings(object_store_url=f"s3://{bucket}/photos/v1", s3_endpoint_url=s3_endpoint))
    assert isinstance(remote, S3ObjectStore) and (remote.bucket, remote.prefix) == (bucket, "photos/v1/")
    remote.put("k.jpg", b"bytes")
    assert S3ObjectStore(s3_client(s3_endpoint), bucket, "photos/v1/").get("k.jpg") == b"bytes"
    assert remote.describe() == f"s3://{bucket}/photos/v1/ at {s3_endpoint}"


def test_settings_refuse_a_store_url_that_is_not_s3() -> None:
    for url in ("http://bucket/x", "s3://", "s3://Upper_Case", "/srv/photos"):
        with pytest.raises(ValidationError, match="object_store_url"):
            Settings(object_store_url=url)
    assert parse_s3_url("s3://my-bucket") == ("my-bucket", "")
    with pytest.raises(ValueError, match="object_store_url"):
        parse_s3_url("gs://my-bucket/x")


def test_the_consumer_reads_and_checks_photos_from_s3(s3_endpoint: str, bucket: str) -> None:
    store = S3ObjectStore(s3_client(s3_endpoint), bucket, "")
    data = render_meal_photo(seed=5)
    store.put("meal-photos/u/a.jpg", data)
    assert load_photo(store, photo_ref("meal-photos/u/a.jpg", data)).shape == (224, 224, 3)
    wrong_size = photo_ref("meal-photos/u/a.jpg", data).model_copy(update={"size_bytes": len(data) + 1})
    with pytest.raises(PhotoRejectedError) as rejected:
        load_photo(store, wrong_size)
    assert rejected.value.reason is DeadLetterReason.SIZE_MISMATCH
    with pytest.raises(PhotoRejectedError) as rejected:
        load_photo(store, photo_ref("meal-photos/u/never.jpg", data))
    assert rejected.value.reason is DeadLetterReason.MISSING_OBJECT
