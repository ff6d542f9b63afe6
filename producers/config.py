"""Typed producer configuration, turned into librdkafka's dotted settings in one place."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class ProducerConfig(BaseModel):
    """How to reach Kafka and how to batch. Secrets stay SecretStr until handed to librdkafka."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = Field(min_length=1)
    client_id: str = "vitalstream-producer"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    #: Time a batch waits for more messages; a few ms buys much larger batches.
    linger_ms: int = Field(default=20, ge=0, le=5_000)
    batch_size_bytes: int = Field(default=1_000_000, gt=0)
    # zstd needs brokers ≥ 2.1 (ours: 2.3) and, on the Faust side, aiokafka with cramjam installed.
    compression: Compression = "zstd"
    #: How long librdkafka keeps retrying a message before reporting it failed.
    delivery_timeout_ms: int = Field(default=120_000, gt=0)
    #: Extra librdkafka settings, applied last (tests use it to lower limits).
    extra: dict[str, str | int | float | bool] = Field(default_factory=dict)

    def librdkafka(self) -> dict[str, str | int | float | bool]:
        """The settings confluent_kafka.Producer takes."""
        settings: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol,
            # Idempotence: retries never duplicate or reorder a partition's messages (needs acks=all).
            "enable.idempotence": True,
            "acks": "all",
            # Java's partitioner for keyed messages, so Faust (and Kafka Streams) agree on a user's partition.
            "partitioner": "murmur2_random",
            "linger.ms": self.linger_ms,
            "batch.size": self.batch_size_bytes,
            "compression.type": self.compression,
            "delivery.timeout.ms": self.delivery_timeout_ms,
        }
        if self.sasl_mechanism is not None:
            settings["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            settings["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            settings["sasl.password"] = self.sasl_password.get_secret_value()
        settings.update(self.extra)
        return settings
