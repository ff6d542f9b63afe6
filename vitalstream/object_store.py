"""Where meal photos (and other blobs) live: a local directory, or an S3-compatible bucket.

Kafka events carry only a reference (schemas.events.PhotoRef); the bytes are here. `object_store(settings)` picks
the store from `Settings.object_store_url`:

    ""                      a directory, Settings.object_store_dir (the local stack's default)
    "s3://bucket/prefix"    an S3 bucket (AWS, or MinIO/Ceph/… at Settings.s3_endpoint_url); credentials come from
                            the standard AWS sources (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, a role)

Keys are relative paths ("meal-photos/<user>/<event>.jpg"), checked the same way by every store, so a key that
would escape a directory is refused everywhere, not just where it would do harm.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from vitalstream.config import Settings

#: Seconds an S3 request may take to connect / to answer before it fails (and is retried by botocore).
S3_CONNECT_TIMEOUT_S = 5.0
S3_READ_TIMEOUT_S = 30.0
_S3_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})


class ObjectStoreError(Exception):
    """The store could not do what was asked; the message names the key and the store."""


class ObjectNotFoundError(ObjectStoreError, LookupError):
    """No object under that key."""


class InvalidObjectKeyError(ObjectStoreError, ValueError):
    """A key that is not a safe relative path."""


class ObjectStore(Protocol):
    """Bytes by key. `put` of the same bytes again is harmless; a reader never sees half an object."""

    def put(self, object_key: str, data: bytes) -> None: ...

    def get(self, object_key: str) -> bytes: ...

    def size(self, object_key: str) -> int:
        """The object's size in bytes, without reading it (so an oversized object is never loaded)."""
        ...

    def describe(self) -> str:
        """Where the objects are, for logs and messages (no credentials)."""
        ...


def check_key(object_key: str) -> list[str]:
    """The key's parts; InvalidObjectKeyError for absolute paths and '', '.', '..' parts."""
    parts = object_key.split("/")
    if object_key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise InvalidObjectKeyError(f"object_key: must be a relative path without '.', '..' or empty parts, "
                                    f"got {object_key!r}")
    return parts


class LocalObjectStore:
    """Objects as files under `root`, keyed by relative path ("meal-photos/<user>/<event>.jpg")."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, object_key: str) -> Path:
        return self.root.joinpath(*check_key(object_key))

    def put(self, object_key: str, data: bytes) -> None:
        """Store `data` atomically (a reader never sees half a file); rewriting the same bytes is a no-op."""
        target = self.path(object_key)
        if target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, object_key: str) -> bytes:
        try:
            return self.path(object_key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
            raise ObjectNotFoundError(f"object {object_key!r}: not in {self.describe()}") from error

    def size(self, object_key: str) -> int:
        path = self.path(object_key)
        if not path.is_file():
            raise ObjectNotFoundError(f"object {object_key!r}: not in {self.describe()}")
        return path.stat().st_size

    def describe(self) -> str:
        return f"directory {self.root}"


class S3ObjectStore:
    """Objects in an S3 bucket under `prefix` ("" or ending in "/"). `client` is a boto3 S3 client (thread-safe)."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, object_key: str) -> str:
        check_key(object_key)
        return f"{self.prefix}{object_key}"

    def put(self, object_key: str, data: bytes) -> None:
        # A PUT is atomic in S3: readers see the old object or the new one, never a part.
        self._call("put", object_key, "put_object", Body=data)

    def get(self, object_key: str) -> bytes:
        response = self._call("get", object_key, "get_object")
        body: bytes = response["Body"].read()
        return body

    def size(self, object_key: str) -> int:
        response = self._call("size", object_key, "head_object")
        return int(response["ContentLength"])

    def describe(self) -> str:
        endpoint = getattr(getattr(self._client, "meta", None), "endpoint_url", None)
        return f"s3://{self.bucket}/{self.prefix}" + (f" at {endpoint}" if endpoint else "")

    def _call(self, what: str, object_key: str, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(object_key)
        try:
            return getattr(self._client, operation)(Bucket=self.bucket, Key=key, **kwargs)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _S3_NOT_FOUND:
                raise ObjectNotFoundError(f"object {object_key!r}: not in {self.describe()}") from error
            raise ObjectStoreError(f"{what} object {object_key!r} in {self.describe()} failed: {code}: "
                                   f"{error}") from error
        except BotoCoreError as error:
            raise ObjectStoreError(f"{what} object {object_key!r} in {self.describe()} failed: {error}") from error


def parse_s3_url(url: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' → ('bucket', 'some/prefix/'); ValueError naming object_store_url otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"object_store_url: expected '' (a local directory) or 's3://bucket[/prefix]', got {url!r}")
    prefix = parts.path.strip("/")
    if prefix:
        check_key(prefix)
    return parts.netloc, f"{prefix}/" if prefix else ""


def s3_client(endpoint_url: str | None) -> Any:
    """A boto3 S3 client; credentials and region from the standard AWS environment variables and files."""
    import boto3
    from botocore.config import Config

    # MinIO and Ceph serve buckets by path; virtual-hosted names need DNS that a private endpoint rarely has.
    addressing = {"addressing_style": "path"} if endpoint_url else {}
    config = Config(connect_timeout=S3_CONNECT_TIMEOUT_S, read_timeout=S3_READ_TIMEOUT_S,
                    retries={"max_attempts": 5, "mode": "standard"}, s3=addressing)
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def object_store(settings: Settings) -> ObjectStore:
    """The store `settings` name (see the module docstring)."""
    if not settings.object_store_url:
        return LocalObjectStore(settings.object_store_dir)
    bucket, prefix = parse_s3_url(settings.object_store_url)
    return S3ObjectStore(s3_client(settings.s3_endpoint_url), bucket, prefix)
