"""Configuration from the environment (12-factor), with documented defaults.

Every external service can be given by address; when it is, the local stack starts nothing for it.
When it is not, the address is the local stack's, on 127.0.0.1 and the port configured here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.events import MAX_PHOTO_BYTES

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def _default_stack_dir() -> Path:
    # A checkout keeps its stack beside the code; an installed copy keeps it in the working directory.
    if (_PACKAGE_ROOT / "pyproject.toml").exists():
        return _PACKAGE_ROOT / ".stack"
    return Path.cwd() / ".stack"


class Settings(BaseSettings):
    """All settings. Environment names are the field's alias, or VITALSTREAM_<FIELD> for the rest."""

    model_config = SettingsConfigDict(env_prefix="VITALSTREAM_", extra="ignore", populate_by_name=True)

    # External services (12-factor). Unset: the local stack's address is used.
    kafka_bootstrap_servers: str | None = Field(default=None, validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    triton_url: str | None = Field(default=None, validation_alias="TRITON_URL")
    triton_protocol: Literal["grpc", "http"] = Field(default="grpc", validation_alias="TRITON_PROTOCOL")
    prometheus_url: str | None = Field(default=None, validation_alias="PROMETHEUS_URL")

    # Local stack: where its state lives and the ports it listens on (127.0.0.1 only).
    stack_dir: Path = Field(default_factory=_default_stack_dir)
    #: Where meal photos (and other blobs) are kept; a local directory standing in for an object store.
    object_store_dir: Path = Field(default_factory=lambda data: data["stack_dir"] / "objects")
    #: "" keeps objects in object_store_dir; "s3://bucket/prefix" in an S3-compatible bucket (vitalstream.object_store).
    object_store_url: str = Field(default="", pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._/-]*)?)?$")
    #: The S3 API's address for MinIO, Ceph and the like; None: AWS (or AWS_ENDPOINT_URL_S3, read by boto3 itself).
    s3_endpoint_url: str | None = Field(default=None, pattern=r"^https?://")
    kafka_port: int = 39092
    zookeeper_port: int = 32181
    postgres_port: int = 35432
    postgres_db: str = "vitalstream"
    triton_http_port: int = 38000
    triton_grpc_port: int = 38001
    triton_metrics_port: int = 38002
    prometheus_port: int = 39090
    # What the local Triton serves (a Triton model repository: <model>/config.pbtxt, <model>/<version>/).
    model_repository: Path = _PACKAGE_ROOT / "inference_consumer" / "model_repository"

    # Our own services' HTTP ports (API; /metrics of the workers), also what Prometheus scrapes.
    api_port: int = 38080
    streams_metrics_port: int = 38091
    inference_metrics_port: int = 38092

    # Stream worker (`vitalstream worker streams`).
    #: BP guideline for users whose profile names none.
    bp_guideline: Literal["acc_aha_2017", "esc_esh_2018", "ksh_2018"] = "acc_aha_2017"
    #: Faust app id: the consumer group and the prefix of its state (changelog) topics.
    streams_app_id: str = Field(default="vitalstream-streams", min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    #: Stable name of one worker replica (e.g. its pod name): a restarted worker rejoins the consumer group as
    #: the same static member and gets its partitions back at once, not after the session timeout.
    streams_instance_id: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    #: Put before every topic name the worker reads or writes (side-by-side deployments, tests).
    streams_topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    #: A batch is written when it holds this many messages, when no message came for 5 ms (light load), or at the
    #: latest when its first message has waited the time below.
    streams_batch_size: int = Field(default=5000, gt=0)
    streams_batch_wait_ms: int = Field(default=200, gt=0)

    # Retention (storage.retention), run by the stream worker on a schedule and by `vitalstream db retention`.
    #: Raw readings, meals and the risk-tier history older than this many days are dropped (by whole chunks).
    retention_raw_days: int = Field(default=3650, ge=1)
    #: Hourly glucose-metric snapshots older than this many days are dropped (the current values stay).
    retention_snapshot_days: int = Field(default=400, ge=1)
    #: Seconds between two retention runs of a stream worker; 0 switches its schedule off.
    retention_interval_s: float = Field(default=3600.0, ge=0)

    # Meal-photo inference consumer (`vitalstream worker inference`).
    #: Its consumer group: replicas with the same id share the meal topic's partitions.
    inference_group_id: str = Field(default="vitalstream-inference", min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    #: Put before every topic name the consumer reads or writes (side-by-side deployments, tests).
    inference_topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    #: The Triton model that analyses meal photos (inputs and outputs as in model_repository/meal_analyzer).
    inference_model: str = Field(default="meal_analyzer", min_length=1)
    #: Photos per Triton request, at most (the model's max_batch_size caps it too); a batch is sent when full
    #: or when its first photo has waited this long.
    inference_max_batch: int = Field(default=16, gt=0, le=1024)
    inference_max_wait_ms: int = Field(default=20, ge=0)
    #: Triton requests in flight at once (photos are decoded meanwhile).
    inference_concurrency: int = Field(default=2, gt=0, le=64)
    #: A photo not analysed this long after the consumer took its meal event goes to the dead-letter topic
    #: (reason deadline_exceeded); longer than Triton outages the consumer should ride out by pausing.
    inference_deadline_s: float = Field(default=300.0, gt=0)

    log_level: str = "INFO"

    # The API (api/). Secrets are SecretStr so they never appear in a repr or a log line.
    #: HS256 key for access and refresh tokens. Unset: a random key per process (a warning is logged; tokens die
    #: with the process and are not shared between workers), so production must set it.
    jwt_secret: SecretStr | None = None
    access_token_ttl_s: int = Field(default=15 * 60, gt=0)
    refresh_token_ttl_s: int = Field(default=30 * 24 * 60 * 60, gt=0)
    #: Request bodies larger than this are refused with 413 (a batch of 1000 readings is about 300 kB).
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    #: Token bucket per credential (or per client address when there is none): refill rate and bucket size.
    rate_limit_per_s: float = Field(default=20.0, gt=0)
    rate_limit_burst: int = Field(default=200, gt=0)
    #: Browser origins allowed by CORS, comma-separated ("" allows none; "*" allows any, without credentials).
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: How long an Idempotency-Key or a client event_id is remembered; a resubmission within it is a no-op.
    idempotency_ttl_s: int = Field(default=24 * 60 * 60, gt=0)
    #: How long ingest waits for Kafka to acknowledge a batch before answering 503.
    publish_timeout_s: float = Field(default=10.0, gt=0)
    #: Meal photos (POST /v1/meals/photo) larger than this are refused with 413; at most the contract's limit.
    max_photo_bytes: int = Field(default=MAX_PHOTO_BYTES, gt=0, le=MAX_PHOTO_BYTES)
    #: Meal photos with more pixels (width × height, read from the header before decoding) are refused with 413:
    #: more than any phone camera takes, so a small file that would inflate to gigabytes never does.
    max_photo_pixels: int = Field(default=40_000_000, gt=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @property
    def kafka(self) -> str:
        """Bootstrap servers to connect to."""
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.kafka_port}"

    @property
    def database(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver)."""
        return self.database_url or f"postgresql+psycopg://postgres@127.0.0.1:{self.postgres_port}/{self.postgres_db}"

    @property
    def triton(self) -> str:
        """host:port of Triton for the configured protocol."""
        if self.triton_url:
            return self.triton_url
        port = self.triton_grpc_port if self.triton_protocol == "grpc" else self.triton_http_port
        return f"127.0.0.1:{port}"

    @property
    def prometheus(self) -> str:
        """Base URL of the Prometheus HTTP API."""
        return self.prometheus_url or f"http://127.0.0.1:{self.prometheus_port}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


def env_names() -> dict[str, str]:
    """Field name → the environment variable that sets it."""
    prefix = Settings.model_config.get("env_prefix", "")
    return {
        name: field.validation_alias if isinstance(field.validation_alias, str) else f"{prefix}{name}".upper()
        for name, field in Settings.model_fields.items()
    }
