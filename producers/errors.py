"""The one exception producers raise for Kafka failures."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException


class ProducerError(RuntimeError):
    """Kafka refused or lost messages. `code` is librdkafka's error name (e.g. MSG_SIZE_TOO_LARGE)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description

    @classmethod
    def from_kafka(cls, error: KafkaError | KafkaException, context: str = "") -> ProducerError:
        kafka_error = error.args[0] if isinstance(error, KafkaException) else error
        if not isinstance(kafka_error, KafkaError):  # KafkaException raised with a plain message
            return cls("UNKNOWN", f"{context}{kafka_error}")
        return cls(kafka_error.name(), f"{context}{kafka_error.str()}")
