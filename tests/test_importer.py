"""CSV import: times and DST decided deliberately, bad rows counted by reason, the iglu file published whole."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from typer.testing import CliRunner

from producers.client import EventProducer
from producers.config import ProducerConfig
from producers.importer import CsvLayout, CsvLayoutError, Rejected, import_glucose, parse_time, read_glucose_csv
from schemas.codec import decode
from schemas.events import GlucoseReading, Source
from schemas.topics import READINGS
from schemas.units import GlucoseUnit
from stack.testing import TopicFactory
from tests.iglu_data import iglu_example_csv
from vitalstream.cli import app
from vitalstream.config import get_settings

IGLU_ROWS, IGLU_USERS = 13_866, 5
NEW_YORK = ZoneInfo("America/New_York")
RECEIVED = datetime(2025, 1, 1, tzinfo=UTC)



def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def read_all(path: Path, layout: CsvLayout | None = None) -> list[GlucoseReading | Rejected]:
    return list(read_glucose_csv(path, layout or CsvLayout(), received_at=RECEIVED))


# -- times ----------------------------------------------------------------------------------------
def test_naive_times_are_local_to_the_given_zone_and_offsets_are_kept() -> None:
    assert parse_time("2015-06-06 16:50:27", ZoneInfo("UTC")) == datetime(2015, 6, 6, 16, 50, 27, tzinfo=UTC)
    assert parse_time("2015-06-06 16:50:27", NEW_YORK) == datetime(2015, 6, 6, 20, 50, 27, tzinfo=UTC)
    assert parse_time("2015-06-06T16:50:27+09:00", NEW_YORK) == datetime(2015, 6, 6, 7, 50, 27, tzinfo=UTC)


def test_a_repeated_local_hour_is_read_in_file_order() -> None:
    # 2015-11-01: New York's clocks went from 02:00 EDT back to 01:00 EST, so 01:00–01:59 happened twice.
    first = parse_time("2015-11-01 01:50:00", NEW_YORK)
    assert first == datetime(2015, 11, 1, 5, 50, tzinfo=UTC)  # the earlier instant (EDT)
    # 01:05 after 01:50: the export has entered the repeated hour, so EST is meant.
    assert parse_time("2015-11-01 01:05:00", NEW_YORK, previous=first) == datetime(2015, 11, 1, 6, 5, tzinfo=UTC)
    assert parse_time("2015-11-01 01:55:00", NEW_YORK, previous=first) == datetime(2015, 11, 1, 5, 55, tzinfo=UTC)


def test_a_skipped_local_hour_is_rejected_not_guessed() -> None:
    with pytest.raises(ValueError, match=r"2015-03-08 02:30:00 does not exist in America/New_York"):
        parse_time("2015-03-08 02:30:00", NEW_YORK)


# -- rows -----------------------------------------------------------------------------------------
def test_rows_become_import_readings_with_ids_that_survive_a_reimport(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "g.csv", '"","id","time","gl"\n"1","Subject 1",2015-06-06 16:50:27,153\n'
                                         '"2","Subject 1",2015-06-06 16:55:27,149\n')
    first, again = read_all(path), read_all(path)
    assert all(isinstance(r, GlucoseReading) for r in first)
    assert [r.event_id for r in first] == [r.event_id for r in again]  # type: ignore[union-attr]
    reading = first[0]
    assert isinstance(reading, GlucoseReading)
    assert (reading.user_id, reading.value, reading.unit, reading.source, reading.device_id) == (
        "Subject 1", 153.0, GlucoseUnit.MG_DL, Source.IMPORT, "import")


def test_bad_rows_are_rejected_with_their_line_and_the_broken_rule(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", "\ufeffid,time,gl\n"
                     "a,2015-06-06 16:50:27,153\n"   # line 2: fine
                     "a,yesterday,150\n"             # 3: time
                     "b,2015-06-06 16:55:27,NA\n"    # 4: value
                     "b,2015-06-06 17:00:27,4\n"     # 5: mg/dL out of range (an mmol/L value?)
                     "c,2099-01-01 00:00:00,120\n"   # 6: in the future
                     "c,2015-03-08 02:30:00,100\n"   # 7: skipped local hour
                     "\n"
                     "d,2015-06-06 17:05:27\n")      # 9: missing field
    rows = read_all(path, CsvLayout(time_zone="America/New_York"))
    rejected = {r.line: r for r in rows if isinstance(r, Rejected)}
    assert [r.user_id for r in rows if isinstance(r, GlucoseReading)] == ["a"]
    assert sorted(rejected) == [3, 4, 5, 6, 7, 9]
    assert rejected[3].problems == ["time: 'yesterday' is not an ISO 8601 date-time (e.g. 2015-06-06 16:50:27)"]
    assert rejected[4].problems == ["gl: 'NA' is not a number"]
    assert "value: glucose must be within 10–1000 mg/dL, got 4 mg/dL (is the unit mmol/L?)" in rejected[5].problems
    assert rejected[6].problems[0].startswith("occurred_at: ")
    assert "does not exist in America/New_York" in rejected[7].problems[0]
    assert rejected[9].problems == ["row: has 2 fields, the header needs 3"]
    # Counting by reason masks the values, so the same rule counts once.
    assert rejected[5].reason == "value: glucose must be within #–# mg/dL, got # mg/dL (is the unit mmol/L?)"


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "other.csv", "patient,timestamp,glucose\nx,2015-06-06 16:50:27,153\n")
    with pytest.raises(CsvLayoutError, match=r"no column 'id'"):
        read_all(path)
    layout = CsvLayout(user_col="patient", time_col="timestamp", value_col="glucose", unit=GlucoseUnit.MMOL_L)
    (reading,) = read_all(write_csv(tmp_path / "mmol.csv", "patient,timestamp,glucose\nx,2015-06-06 16:50:27,8.5\n"),
                          layout)
    assert isinstance(reading, GlucoseReading) and reading.unit is GlucoseUnit.MMOL_L and reading.value == 8.5


def test_the_file_is_streamed_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as handle:
        handle.write("id,time,gl\n")
        for i in range(20_000):
            handle.write(f"u,2015-06-{1 + i // 288 % 28:02d} {i // 12 % 24:02d}:{i % 12 * 5:02d}:00,{100 + i % 50}\n")
    read_bytes = 0

    def count(n: int) -> None:
        nonlocal read_bytes
        read_bytes += n

    rows = read_glucose_csv(path, CsvLayout(), received_at=RECEIVED, on_bytes=count)
    next(rows)
    assert read_bytes < path.stat().st_size / 100
    assert sum(1 for _ in rows) == 19_999 and read_bytes == path.stat().st_size


# -- against the broker ---------------------------------------------------------------------------
def count_messages(bootstrap: str, topic: str) -> tuple[int, set[str]]:
    """Messages in `topic` read by a fresh group: how many, and whose (decoded against the readings contract)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4()}"})
    users: set[str] = set()
    read = 0
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        expected = sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + 30
        while read < expected and time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=1.0):
                assert message.error() is None and message.value() is not None
                users.add(decode(READINGS, message.value() or b"").user_id)
                read += 1
    finally:
        consumer.close()
    return read, users


def test_the_iglu_example_publishes_every_reading(kafka_bootstrap: str, topic_factory: TopicFactory) -> None:
    topic = replace(READINGS, name=topic_factory(partitions=READINGS.partitions))
    with EventProducer(ProducerConfig(bootstrap_servers=kafka_bootstrap)) as producer:
        summary = import_glucose(iglu_example_csv(), CsvLayout(), producer, topic=topic)
    assert summary.rejected == 0, summary.examples
    assert (summary.read, summary.published, len(summary.users)) == (IGLU_ROWS, IGLU_ROWS, IGLU_USERS)
    assert producer.counts.delivered == IGLU_ROWS
    consumed, users = count_messages(kafka_bootstrap, topic.name)
    assert consumed == IGLU_ROWS and users == {f"Subject {i}" for i in range(1, 6)}


def test_cli_import_reports_published_and_rejected(kafka_bootstrap: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    user = f"cli-{uuid.uuid4().hex[:8]}"
    path = write_csv(tmp_path / "g.csv", f"id,time,gl\n{user},2015-06-06 16:50:27,153\n{user},2015-06-06 16:55:27,NA\n"
                                         f"{user},2015-06-06 17:00:27,2\n{user},2015-06-06 17:05:27,1\n")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    get_settings.cache_clear()
    try:
        # Wide enough that the table keeps each reason on one line.
        result = CliRunner().invoke(app, ["import", "glucose", str(path), "--tz", "Europe/Berlin"],
                                    env={"COLUMNS": "250"})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    text = " ".join(re.sub(r"[│┃╭╮╰╯─━┏┓┗┛┡┩└┘┌┐╇╈┳┻]", " ", result.output).split())
    assert "read 4 rows: published 1 readings for 1 users, rejected 3" in text
    assert re.search(r"\b2 value: glucose must be within", text) and re.search(r"\b1 gl: 'NA' is not a number", text)


def test_cli_import_names_an_unknown_time_zone(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "g.csv", "id,time,gl\n")
    result = CliRunner().invoke(app, ["import", "glucose", str(path), "--tz", "Mars/Olympus"])
    assert result.exit_code == 2 and "'Mars/Olympus' is not an IANA time zone" in result.output
