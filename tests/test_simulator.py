"""The device simulator: deterministic, physiologically plausible, and its events round-trip through Kafka."""

from __future__ import annotations

import bisect
import hashlib
import io
import itertools
import re
import time
import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import mean
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from PIL import Image
from typer.testing import CliRunner

from producers.client import EventProducer
from producers.config import ProducerConfig
from producers.simulator import SimulatedEvent, default_start, simulate
from producers.simulator.physiology import hba1c_pct_for_mean_glucose, meal_shape
from producers.simulator.profiles import Control
from producers.simulator.publish import SimulatedClock, publish
from producers.simulator.user import UserSimulator
from schemas.codec import decode, encode
from schemas.events import BloodPressureReading, GlucoseKind, GlucoseReading, HbA1cResult, MealLogged
from schemas.topics import MEALS, READINGS, Topic
from schemas.units import HbA1cUnit, glucose_to_mg_dl, hba1c_to_pct
from stack.testing import TopicFactory
from vitalstream.cli import app
from vitalstream.config import get_settings
from vitalstream.object_store import LocalObjectStore

START = datetime(2025, 3, 1, tzinfo=UTC)
POPULATION_SEED, POPULATION_USERS, POPULATION_DAYS = 11, 40, 4
HALF_STEP = timedelta(minutes=2.5)  # half the CGM interval


def consume_all(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Message]:
    """Every message now in `topic`, read by a fresh group, in partition-then-offset order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        expected = sum(high - low for low, high in (
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions))
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while len(messages) < expected and time.monotonic() < deadline:
            batch = consumer.consume(10_000, timeout=1.0)
            assert all(m.error() is None for m in batch), [m.error() for m in batch if m.error()]
            messages += batch
        assert len(messages) == expected, f"read {len(messages)} of {expected} messages in {timeout_s} s"
        return sorted(messages, key=lambda m: (m.partition() or 0, m.offset() or 0))
    finally:
        consumer.close()


def payload(message: Message) -> bytes:
    value = message.value()
    assert value is not None, f"message at offset {message.offset()} has no value"
    return value


def java_murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2 (Java client, Faust, Kafka Streams): 32-bit unsigned result."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    h = (0x9747B28C ^ len(data)) & mask
    whole = len(data) & ~3
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = data[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    return h ^ (h >> 15)


def java_partition(key: bytes, partitions: int) -> int:
    return (java_murmur2(key) & 0x7FFFFFFF) % partitions


@pytest.fixture(scope="module")
def population() -> list[SimulatedEvent]:
    return list(simulate(POPULATION_SEED, POPULATION_USERS, START, POPULATION_DAYS))


@pytest.fixture(scope="module")
def profiles() -> dict[str, UserSimulator]:
    end = START + timedelta(days=POPULATION_DAYS)
    sims = [UserSimulator(POPULATION_SEED, i, START, end) for i in range(POPULATION_USERS)]
    return {sim.profile.user_id: sim for sim in sims}


def cgm_by_user(events: list[SimulatedEvent]) -> dict[str, list[GlucoseReading]]:
    by_user: dict[str, list[GlucoseReading]] = defaultdict(list)
    for item in events:
        if isinstance(item.event, GlucoseReading) and item.event.kind is GlucoseKind.CGM:
            by_user[item.event.user_id].append(item.event)
    return by_user


# -- determinism ----------------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_events_ids_and_photos() -> None:
    first = [(encode(e.event), e.photo) for e in simulate(5, 4, START, 1)]
    again = [(encode(e.event), e.photo) for e in simulate(5, 4, START, 1)]
    assert first == again
    assert any(photo is not None for _, photo in first)


def test_different_seeds_give_different_people_and_ids() -> None:
    a = list(simulate(5, 4, START, 1))
    b = list(simulate(6, 4, START, 1))
    assert not {e.event.event_id for e in a} & {e.event.event_id for e in b}
    values_a = [e.event.value for e in a if isinstance(e.event, GlucoseReading)][:200]
    values_b = [e.event.value for e in b if isinstance(e.event, GlucoseReading)][:200]
    assert values_a != values_b


def test_a_user_does_not_depend_on_how_many_others_are_simulated() -> None:
    few = [encode(e.event) for e in simulate(5, 3, START, 1) if e.event.user_id == "sim-5-2"]
    many = [encode(e.event) for e in simulate(5, 8, START, 1) if e.event.user_id == "sim-5-2"]
    assert few and few == many


def test_default_start_is_whole_days_before_the_current_hour() -> None:
    now = datetime(2025, 6, 1, 14, 37, 12, tzinfo=UTC)
    assert default_start(2, now) == datetime(2025, 5, 30, 14, tzinfo=UTC)


# -- shape of the stream --------------------------------------------------------------------------
def test_events_are_merged_in_received_order_within_the_window(population: list[SimulatedEvent]) -> None:
    received = [e.event.received_at for e in population]
    assert received == sorted(received)
    end = START + timedelta(days=POPULATION_DAYS)
    assert all(START <= e.event.occurred_at <= e.event.received_at < end for e in population)
    assert len({e.event.event_id for e in population}) == len(population)
    assert {e.event.user_id for e in population} == {f"sim-{POPULATION_SEED}-{i}" for i in range(POPULATION_USERS)}


def test_every_event_validates_against_its_topic_contract(population: list[SimulatedEvent]) -> None:
    for item in population:
        assert decode(item.topic, encode(item.event)) == item.event
        assert item.topic is (MEALS if isinstance(item.event, MealLogged) else READINGS)
    kinds = {getattr(e.event, "type", None) for e in population}
    assert kinds == {"glucose", "blood_pressure", "hba1c", "exercise", "meal"}


def test_cgm_reads_every_five_minutes_within_its_range_with_some_gaps(population: list[SimulatedEvent]) -> None:
    gaps = 0
    for readings in cgm_by_user(population).values():
        steps = [(b.occurred_at - a.occurred_at) / timedelta(minutes=5) for a, b in itertools.pairwise(readings)]
        assert all(step == int(step) and step >= 1 for step in steps)
        gaps += sum(step > 1 for step in steps)
        assert all(40 <= r.value <= 400 for r in readings)
        assert len(readings) > 0.8 * POPULATION_DAYS * 288
    assert gaps > 0


def test_meals_photos_are_jpegs_matching_their_reference(population: list[SimulatedEvent]) -> None:
    with_photo = [e for e in population if e.photo is not None]
    assert with_photo
    for item in with_photo:
        assert isinstance(item.event, MealLogged) and item.event.photo is not None
        ref = item.event.photo
        assert ref.sha256 == hashlib.sha256(item.photo or b"").hexdigest() and ref.size_bytes == len(item.photo or b"")
        assert ref.object_key == f"meal-photos/{item.event.user_id}/{item.event.event_id}.jpg"
    assert Image.open(io.BytesIO(with_photo[0].photo or b"")).format == "JPEG"
    meals_per_user_day = sum(isinstance(e.event, MealLogged) for e in population) / POPULATION_USERS / POPULATION_DAYS
    assert 3 <= meals_per_user_day <= 5


# -- physiology -----------------------------------------------------------------------------------
def test_poorly_controlled_people_run_higher_than_well_controlled(population: list[SimulatedEvent],
                                                                   profiles: dict[str, UserSimulator]) -> None:
    means: dict[Control, list[float]] = defaultdict(list)
    for user, readings in cgm_by_user(population).items():
        means[profiles[user].profile.control].append(mean(r.value for r in readings))
    assert all(means[c] for c in Control), {c: len(v) for c, v in means.items()}
    assert min(means[Control.POOR]) > max(means[Control.WELL])
    assert mean(means[Control.POOR]) > 180 > 150 > mean(means[Control.WELL]) > 100


def test_night_low_people_go_below_70_at_night_and_others_rarely_do(population: list[SimulatedEvent],
                                                                     profiles: dict[str, UserSimulator]) -> None:
    for user, readings in cgm_by_user(population).items():
        profile = profiles[user].profile
        zone = ZoneInfo(profile.time_zone)
        night = [r.value for r in readings if r.occurred_at.astimezone(zone).hour < 6]
        low_share = sum(v < 70 for v in night) / len(night)
        if profile.control is Control.NIGHT_LOWS:
            assert low_share > 0.01, (user, min(night))
        else:
            assert low_share < 0.005, (user, profile.control, min(night))


def test_glucose_peaks_45_to_60_minutes_after_meals_and_settles_within_3_hours() -> None:
    minutes = np.arange(0, 300, 1.0)
    for peak in (45.0, 60.0):
        shape = meal_shape(minutes, peak)
        assert minutes[int(np.argmax(shape))] == peak
        assert shape[180] < 0.2 and shape[240] < 0.05


def test_cgm_rises_after_meals(population: list[SimulatedEvent]) -> None:
    by_user = cgm_by_user(population)
    rises = []
    for item in population:
        if not isinstance(item.event, MealLogged):
            continue
        readings = by_user[item.event.user_id]
        times = [r.occurred_at for r in readings]

        def near(at: datetime, readings: list[GlucoseReading] = readings,
                 times: list[datetime] = times) -> float | None:
            i = bisect.bisect_left(times, at - HALF_STEP)
            return readings[i].value if i < len(times) and times[i] <= at + HALF_STEP else None

        before = near(item.event.occurred_at - timedelta(minutes=5))
        peak = near(item.event.occurred_at + timedelta(minutes=55))
        if before is not None and peak is not None:
            rises.append(peak - before)
    assert len(rises) > 300
    assert float(np.median(rises)) > 20


def test_hypertensive_people_have_higher_blood_pressure(population: list[SimulatedEvent],
                                                        profiles: dict[str, UserSimulator]) -> None:
    systolic: dict[bool, list[int]] = defaultdict(list)
    per_day: dict[str, int] = defaultdict(int)
    for item in population:
        if isinstance(item.event, BloodPressureReading):
            systolic[profiles[item.event.user_id].profile.hypertensive].append(item.event.systolic_mmhg)
            assert item.event.diastolic_mmhg < item.event.systolic_mmhg
            per_day[item.event.user_id] += 1
    assert mean(systolic[True]) > mean(systolic[False]) + 20
    assert mean(systolic[True]) > 140 > 130 > mean(systolic[False])
    assert all(POPULATION_DAYS - 1 <= n <= 2 * POPULATION_DAYS + 1 for n in per_day.values())


def test_hba1c_follows_the_mean_glucose_of_the_last_90_days() -> None:
    days = 100
    events = list(simulate(3, 2, START, days))
    cgm = cgm_by_user(events)
    checked = 0
    for item in events:
        if not isinstance(item.event, HbA1cResult) or item.event.occurred_at < START + timedelta(days=60):
            continue
        a1c = item.event
        window = [r.value for r in cgm[a1c.user_id]
                  if a1c.occurred_at - timedelta(days=90) <= r.occurred_at < a1c.occurred_at]
        expected = hba1c_pct_for_mean_glucose(mean(window))
        assert abs(hba1c_to_pct(a1c.value, a1c.unit) - expected) < 0.6, (a1c, expected)
        if a1c.unit is HbA1cUnit.MMOL_MOL:
            assert a1c.value == int(a1c.value)
        checked += 1
    assert checked == 2  # one per user, about 90 days after the one at enrolment


def test_fingersticks_follow_the_users_unit_and_the_cgm(population: list[SimulatedEvent],
                                                        profiles: dict[str, UserSimulator]) -> None:
    cgm = cgm_by_user(population)
    differences = []
    for item in population:
        event = item.event
        if not isinstance(event, GlucoseReading) or event.kind is not GlucoseKind.FINGERSTICK:
            continue
        assert event.unit is profiles[event.user_id].profile.glucose_unit
        close = [r.value for r in cgm[event.user_id] if abs(r.occurred_at - event.occurred_at) < timedelta(minutes=3)]
        if close:
            differences.append(abs(glucose_to_mg_dl(event.value, event.unit) - close[0]) / close[0])
    assert len(differences) > 100
    assert float(np.median(differences)) < 0.1


# -- the sending shell ----------------------------------------------------------------------------
def test_simulated_clock_runs_speed_times_faster() -> None:
    ticks = iter([100.0, 110.0, 110.0])
    clock = SimulatedClock(START, speed=60.0, monotonic=lambda: next(ticks))
    assert clock.now() == START + timedelta(minutes=10)
    assert clock.real_seconds_until(START + timedelta(minutes=20)) == pytest.approx(10.0)


def routes_to_private_topics(topic_factory: TopicFactory) -> dict[str, Topic]:
    return {t.name: replace(t, name=topic_factory(partitions=t.partitions)) for t in (READINGS, MEALS)}


def test_fifty_users_round_trip_through_kafka_on_their_java_partition(
        kafka_bootstrap: str, topic_factory: TopicFactory, tmp_path: Path) -> None:
    routes = routes_to_private_topics(topic_factory)
    sent: list[SimulatedEvent] = []
    store = LocalObjectStore(tmp_path)
    with EventProducer(ProducerConfig(bootstrap_servers=kafka_bootstrap)) as producer:
        counts = publish(simulate(21, 50, START, 2), producer, store, routes=routes, on_sent=sent.append)
    assert counts.events == len(sent) > 50 * 2 * 280 and len(counts.users) == 50
    assert producer.counts.delivered == len(sent) and producer.counts.failed == 0

    produced_order: dict[tuple[str, str], list[object]] = defaultdict(list)  # (topic, user) -> ids
    for item in sent:
        produced_order[item.topic.name, item.event.user_id].append(item.event.event_id)
    received: list[object] = []
    for registry_topic, topic in routes.items():
        consumed_order: dict[str, list[object]] = defaultdict(list)
        partitions: dict[str, set[int]] = defaultdict(set)
        for message in consume_all(kafka_bootstrap, topic.name):
            event = decode(topic, payload(message))
            assert message.key() == event.user_id.encode()
            consumed_order[event.user_id].append(event.event_id)
            partitions[event.user_id].add(message.partition() or 0)
            received.append(event.event_id)
            if isinstance(event, MealLogged) and event.photo is not None:
                stored = store.get(event.photo.object_key)
                assert hashlib.sha256(stored).hexdigest() == event.photo.sha256
        for user, ids in consumed_order.items():
            assert partitions[user] == {java_partition(user.encode(), topic.partitions)}, user
            assert ids == produced_order[registry_topic, user], f"{user}: consumed order differs on {topic.name}"
    assert len(received) == len(set(received)) == len(sent)


def test_the_test_murmur2_is_javas() -> None:
    # Reference partitions from Kafka's Java client for 1000 partitions, and aiokafka's port (used by Faust).
    for key, partition in [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566),
                           (b"\x00 ", 742)]:
        assert java_partition(key, 1000) == partition
    for user in (f"sim-{s}-{i}".encode() for s in range(3) for i in range(50)):
        assert java_murmur2(user) == aiokafka_murmur2(user) & 0xFFFFFFFF


def test_paced_publishing_sends_each_event_when_its_simulated_time_comes(
        kafka_bootstrap: str, topic_factory: TopicFactory, tmp_path: Path) -> None:
    routes = routes_to_private_topics(topic_factory)
    speed, days = 1800.0, 0.03  # 43 simulated minutes in about 1.4 s
    sent_at: list[tuple[datetime, float]] = []
    with EventProducer(ProducerConfig(bootstrap_servers=kafka_bootstrap)) as producer:
        clock = SimulatedClock(START, speed)
        began = time.monotonic()
        publish(simulate(8, 2, START, days), producer, LocalObjectStore(tmp_path), clock=clock, routes=routes,
                on_sent=lambda e: sent_at.append((e.event.received_at, time.monotonic() - began)))
    assert len(sent_at) > 10
    for received_at, real_s in sent_at:
        due_s = (received_at - START).total_seconds() / speed
        assert due_s - 0.01 <= real_s <= due_s + 0.5


def test_cli_simulate_sends_and_summarises(kafka_bootstrap: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("VITALSTREAM_OBJECT_STORE_DIR", str(tmp_path))
    get_settings.cache_clear()
    seed = time.time_ns() % 1_000_000_000  # fresh user ids on the shared registry topics
    try:
        result = CliRunner().invoke(app, ["simulate", "--users", "3", "--days", "1", "--seed", str(seed),
                                          "--start", "2025-03-01"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    expected = sum(1 for _ in simulate(seed, 3, START, 1))
    assert f"{expected:,}" in result.output and "3 users" in result.output
    assert (tmp_path / "meal-photos").is_dir() == any(e.photo for e in simulate(seed, 3, START, 1))


def test_cli_simulate_refuses_a_period_in_the_future() -> None:
    result = CliRunner().invoke(app, ["simulate", "--start", "2999-01-01", "--days", "1"])
    assert result.exit_code == 2 and "in the future" in unboxed(result.output)


def unboxed(text: str) -> str:
    """Rich's error panel without its frame and line breaks."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())
