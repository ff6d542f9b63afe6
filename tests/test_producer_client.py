"""EventProducer against the real broker: config, delivery reports, failures, compression Faust can read."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from producers.client import EventProducer
from producers.config import ProducerConfig
from producers.errors import ProducerError
from schemas.codec import decode
from schemas.events import GlucoseKind, GlucoseReading, MealLogged, MealSlot, Source
from schemas.topics import DEAD_LETTER, MEALS, READINGS, TOPICS, Topic
from schemas.units import GlucoseUnit
from stack.testing import TopicFactory
from vitalstream.kafka_admin import admin_client, create_topics


def reading(user_id: str = "u-1", value: float = 120.0) -> GlucoseReading:
    at = datetime.now(UTC) - timedelta(minutes=5)
    return GlucoseReading(user_id=user_id, device_id="test", source=Source.DEVICE, occurred_at=at, received_at=at,
                          unit=GlucoseUnit.MG_DL, value=value, kind=GlucoseKind.CGM)


def consume_all(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Message]:
    """Every message now in `topic`, read by a fresh group, in partition-then-offset order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        expected = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            expected += high - low
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while len(messages) < expected and time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=1.0):
                assert message.error() is None, message.error()
                messages.append(message)
        assert len(messages) == expected, f"read {len(messages)} of {expected} messages in {timeout_s} s"
        return sorted(messages, key=lambda m: (m.partition(), m.offset()))
    finally:
        consumer.close()


def payload(message: Message) -> bytes:
    value = message.value()
    assert value is not None, f"message at offset {message.offset()} has no value"
    return value


# -- configuration (no broker) --------------------------------------------------------------------
def test_config_asks_for_idempotence_acks_all_java_partitioning_and_zstd() -> None:
    settings = ProducerConfig(bootstrap_servers="127.0.0.1:1").librdkafka()
    assert settings["enable.idempotence"] is True
    assert settings["acks"] == "all"
    assert settings["partitioner"] == "murmur2_random"
    assert settings["compression.type"] == "zstd"
    assert settings["linger.ms"] == 20


def test_config_keeps_the_sasl_password_secret_until_handed_to_librdkafka() -> None:
    config = ProducerConfig(bootstrap_servers="b:9092", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                            sasl_username="vs", sasl_password="hunter2")
    assert "hunter2" not in repr(config) and "hunter2" not in str(config.model_dump())
    assert config.librdkafka()["sasl.password"] == "hunter2"


def test_the_client_is_made_on_first_use_not_in_init() -> None:
    # librdkafka rejects this setting when the client is made: so __init__ must not make it.
    producer = EventProducer(ProducerConfig(bootstrap_servers="127.0.0.1:1", extra={"no.such.setting": 1}))
    producer.flush(timeout_s=1)
    assert len(producer) == 0
    with pytest.raises(ProducerError) as caught:
        producer.produce("any-topic", b"x")
    assert caught.value.code == "_INVALID_ARG" and "no.such.setting" in caught.value.description


def test_sending_an_event_to_a_topic_of_another_contract_is_refused_before_kafka() -> None:
    meal = MealLogged(user_id="u", device_id="app", source=Source.APP, occurred_at=datetime.now(UTC),
                      meal_slot=MealSlot.LUNCH)
    producer = EventProducer(ProducerConfig(bootstrap_servers="no-such-host.invalid:9092"))
    with pytest.raises(ValueError, match=r"vitalstream\.readings does not carry MealLogged"):
        producer.send(READINGS, meal)
    with pytest.raises(ValueError, match="raw bytes"):
        producer.send(DEAD_LETTER, reading())
    assert producer.counts.produced == 0


# -- against the broker ---------------------------------------------------------------------------
def test_registry_topics_exist_with_the_registry_partition_counts(kafka_bootstrap: str) -> None:
    admin = admin_client(kafka_bootstrap)
    create_topics(admin)
    metadata = admin.list_topics(timeout=10)
    for topic in TOPICS.values():
        assert len(metadata.topics[topic.name].partitions) == topic.partitions, topic.name


def test_events_arrive_keyed_by_user_with_type_headers_and_decode(kafka_bootstrap: str,
                                                                   topic_factory: TopicFactory) -> None:
    topic = replace(READINGS, name=topic_factory(partitions=READINGS.partitions))
    sent = [reading(f"user-{i % 7}", 80.0 + i) for i in range(200)]
    with EventProducer(ProducerConfig(bootstrap_servers=kafka_bootstrap)) as producer:
        for event in sent:
            producer.send(topic, event)
    assert producer.counts.delivered == producer.counts.produced == 200 and producer.counts.failed == 0
    messages = consume_all(kafka_bootstrap, topic.name)
    assert sorted(decode(topic, payload(m)).event_id for m in messages) == sorted(e.event_id for e in sent)
    first = messages[0]
    assert first.key() == decode(topic, payload(first)).user_id.encode()
    assert dict(first.headers() or []) == {"type": b"glucose", "schema_version": b"1"}


def test_zstd_is_accepted_by_the_broker_and_readable_by_aiokafka_under_faust(kafka_bootstrap: str,
                                                                              topic_factory: TopicFactory) -> None:
    topic = replace(READINGS, name=topic_factory(partitions=2))
    with EventProducer(ProducerConfig(bootstrap_servers=kafka_bootstrap, compression="zstd")) as producer:
        for i in range(50):
            producer.send(topic, reading(f"user-{i}"))

    async def read() -> list[bytes]:
        consumer = AIOKafkaConsumer(topic.name, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                    group_id=f"test-{uuid.uuid4()}", enable_auto_commit=False)
        await consumer.start()
        values: list[bytes] = []
        try:
            async with asyncio.timeout(30):
                while len(values) < 50:
                    for records in (await consumer.getmany(timeout_ms=1000)).values():
                        values += [r.value for r in records if r.value is not None]
        finally:
            await consumer.stop()
        return values

    values = asyncio.run(read())
    assert len(values) == 50
    assert all(decode(topic, value).type == "glucose" for value in values)


def test_a_message_over_the_broker_limit_fails_delivery_and_flush_raises(kafka_bootstrap: str,
                                                                         topic_factory: TopicFactory) -> None:
    topic = topic_factory(partitions=1)
    # Let the client queue it (its own limit would refuse it at once); the broker's limit is ~1 MB.
    config = ProducerConfig(bootstrap_servers=kafka_bootstrap, extra={"message.max.bytes": 5_000_000})
    producer = EventProducer(config)
    producer.produce(topic, b"fits", key=b"u")
    producer.produce(topic, os.urandom(2_000_000), key=b"u")  # random bytes: compression cannot shrink them
    with pytest.raises(ProducerError) as caught:
        producer.flush()
    assert caught.value.code == "MSG_SIZE_TOO_LARGE"
    assert caught.value.description.startswith("1 message(s) not delivered")
    assert producer.counts.delivered == 1 and producer.counts.failed == 1
    producer.flush()  # a failure is raised once, not again on the next flush


def test_the_client_limit_raises_at_once(kafka_bootstrap: str, topic_factory: TopicFactory) -> None:
    producer = EventProducer(ProducerConfig(bootstrap_servers=kafka_bootstrap))
    with pytest.raises(ProducerError) as caught:
        producer.produce(topic_factory(partitions=1), b"x" * 2_000_000, key=b"u")
    assert caught.value.code == "MSG_SIZE_TOO_LARGE"


def test_producing_to_a_missing_topic_fails_when_the_broker_does_not_create_topics(kafka_bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    broker_id = next(iter(admin.list_topics(timeout=10).brokers))
    resource = ConfigResource(ConfigResource.Type.BROKER, str(broker_id))
    broker_config = admin.describe_configs([resource])[resource].result(timeout=10)
    if broker_config["auto.create.topics.enable"].value == "true":
        pytest.skip("this broker creates topics on first use (the local stack's does not)")
    config = ProducerConfig(bootstrap_servers=kafka_bootstrap, extra={"topic.metadata.propagation.max.ms": 1000})
    producer = EventProducer(config)
    producer.send(replace(READINGS, name=f"missing-{uuid.uuid4().hex}"), reading())
    with pytest.raises(ProducerError) as caught:
        producer.flush(timeout_s=30)
    assert caught.value.code in {"UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC"}


def test_a_full_local_queue_is_drained_and_retried(kafka_bootstrap: str, topic_factory: TopicFactory) -> None:
    topic = topic_factory(partitions=3)
    config = ProducerConfig(bootstrap_servers=kafka_bootstrap, linger_ms=1, extra={"queue.buffering.max.messages": 10})
    with EventProducer(config, max_block_s=20) as producer:
        for i in range(300):
            producer.produce(topic, b"%d" % i, key=b"k%d" % (i % 5))
    assert producer.counts.delivered == 300
    assert len(consume_all(kafka_bootstrap, topic)) == 300


def test_leaving_the_context_flushes(kafka_bootstrap: str, topic_factory: TopicFactory) -> None:
    topic: Topic = replace(MEALS, name=topic_factory(partitions=MEALS.partitions))
    meal = MealLogged(user_id="u-9", device_id="app", source=Source.APP, occurred_at=datetime.now(UTC),
                      meal_slot=MealSlot.DINNER, carbs_g=60.0)
    with EventProducer(ProducerConfig(bootstrap_servers=kafka_bootstrap, linger_ms=1000)) as producer:
        producer.send(topic, meal)
        assert producer.counts.delivered == 0  # still lingering in the batch
    assert producer.counts.delivered == 1 and len(producer) == 0
    assert decode(topic, payload(consume_all(kafka_bootstrap, topic.name)[0])) == meal
