"""Configuration from the environment (12-factor), with documented defaults.

Every external service can be given by address; when it is, the local stack starts nothing for it.
When it is not, the address is the local stack's, on 127.0.0.1 and the port configured here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    log_level: str = "INFO"

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
