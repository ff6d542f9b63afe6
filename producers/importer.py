"""CSV glucose import: each row becomes a GlucoseReading (source=import), streamed, never loaded whole.

Defaults fit iglu's data shape (columns id, time, gl; naive local times like "2015-06-06 16:50:27").

Local times and daylight saving, decided here rather than left to chance:
- a time with an offset ("…+02:00", "…Z") is taken as written;
- a naive time is local to `time_zone`;
- a naive time that happens twice (the hour repeated when clocks go back) is the earlier instant, unless that
  would put the reading before the same user's previous reading: a CGM export runs forward, so it has entered
  the repeated hour and the later instant is meant;
- a naive time that never happened (the hour skipped when clocks go forward) is rejected, not guessed.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from producers.client import EventProducer
from schemas.codec import describe
from schemas.events import GlucoseKind, GlucoseReading, Source
from schemas.topics import READINGS, Topic
from schemas.units import GlucoseUnit

#: Namespace of imported event ids: uuid5(namespace, "user|time|value|unit"); a re-import gives the same ids.
IMPORT_NAMESPACE = UUID("0c7d1e4a-6b2f-4f55-8d3e-2a9b7c41f6d0")
_NUMBERS = re.compile(r"\d[\d.:T+-]*")


@dataclass(frozen=True)
class CsvLayout:
    """Which columns hold what, and how to read them."""

    user_col: str = "id"
    time_col: str = "time"
    value_col: str = "gl"
    unit: GlucoseUnit = GlucoseUnit.MG_DL
    time_zone: str = "UTC"
    kind: GlucoseKind = GlucoseKind.CGM
    device_id: str = "import"


@dataclass(frozen=True)
class Rejected:
    """A row that broke the contract; `line` is its line in the file (the header is line 1)."""

    line: int
    problems: list[str]

    @property
    def reason(self) -> str:
        """The first problem with numbers and times masked, so rows can be counted by reason."""
        return _NUMBERS.sub("#", self.problems[0])


class CsvLayoutError(ValueError):
    """The file's header lacks a column the layout names."""


def read_glucose_csv(path: Path, layout: CsvLayout, received_at: datetime | None = None,
                     on_bytes: Callable[[int], None] | None = None) -> Iterator[GlucoseReading | Rejected]:
    """One GlucoseReading or Rejected per data row, in file order. `on_bytes` hears how much was read."""
    zone = ZoneInfo(layout.time_zone)
    received = received_at or datetime.now(UTC)
    previous: dict[str, datetime] = {}
    with path.open("rb") as handle:
        reader = csv.reader(_decoded_lines(handle, on_bytes))
        header = next(reader, None)
        if header is None:
            raise CsvLayoutError(f"{path}: empty file, expected a header with {layout.user_col}, "
                                 f"{layout.time_col}, {layout.value_col}")
        columns = _column_indexes(header, layout, path)
        for row in reader:
            if not row:
                continue
            yield _reading(row, columns, layout, zone, received, previous, reader.line_num)


def _decoded_lines(handle: Iterable[bytes], on_bytes: Callable[[int], None] | None) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")()  # a byte-order mark, if any, is dropped
    for raw in handle:
        if on_bytes is not None:
            on_bytes(len(raw))
        yield decoder.decode(raw)


def _column_indexes(header: list[str], layout: CsvLayout, path: Path) -> tuple[int, int, int]:
    indexes = []
    for column in (layout.user_col, layout.time_col, layout.value_col):
        if column not in header:
            raise CsvLayoutError(f"{path}: no column {column!r} in the header {header}")
        indexes.append(header.index(column))
    return indexes[0], indexes[1], indexes[2]


def _reading(row: list[str], columns: tuple[int, int, int], layout: CsvLayout, zone: ZoneInfo, received: datetime,
             previous: dict[str, datetime], line: int) -> GlucoseReading | Rejected:
    if len(row) <= max(columns):
        return Rejected(line, [f"row: has {len(row)} fields, the header needs {max(columns) + 1}"])
    user_id, time_text, value_text = (row[i].strip() for i in columns)
    problems = []
    occurred_at = None
    try:
        occurred_at = parse_time(time_text, zone, previous.get(user_id))
    except ValueError as exc:
        problems.append(f"{layout.time_col}: {exc}")
    value = None
    try:
        value = float(value_text)
    except ValueError:
        problems.append(f"{layout.value_col}: {value_text!r} is not a number")
    if occurred_at is None or value is None:
        return Rejected(line, problems)
    try:
        reading = GlucoseReading(
            event_id=uuid5(IMPORT_NAMESPACE, f"{user_id}|{occurred_at.isoformat()}|{value!r}|{layout.unit}"),
            user_id=user_id, device_id=layout.device_id, source=Source.IMPORT, occurred_at=occurred_at,
            received_at=received, unit=layout.unit, value=value, kind=layout.kind)
    except ValidationError as error:
        return Rejected(line, describe(error))
    previous[user_id] = occurred_at
    return reading


def parse_time(text: str, zone: ZoneInfo, previous: datetime | None = None) -> datetime:
    """An ISO 8601 time in UTC; naive times are local to `zone` (see the module docstring for DST)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time (e.g. 2015-06-06 16:50:27)") from None
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    earlier = parsed.replace(tzinfo=zone, fold=0).astimezone(UTC)
    later = parsed.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if earlier.astimezone(zone).replace(tzinfo=None) != parsed:
        raise ValueError(f"{text} does not exist in {zone.key} (skipped when clocks went forward)")
    if earlier != later and previous is not None and earlier < previous:
        return later
    return earlier


@dataclass
class ImportSummary:
    read: int = 0
    published: int = 0
    users: set[str] = field(default_factory=set)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    examples: dict[str, Rejected] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


def import_glucose(path: Path, layout: CsvLayout, producer: EventProducer, topic: Topic = READINGS,
                   on_bytes: Callable[[int], None] | None = None) -> ImportSummary:
    """Publish every valid row of `path` to `topic`; count the rest by reason. Flushes before returning."""
    summary = ImportSummary()
    for item in read_glucose_csv(path, layout, on_bytes=on_bytes):
        summary.read += 1
        if isinstance(item, Rejected):
            summary.rejected_by_reason[item.reason] += 1
            summary.examples.setdefault(item.reason, item)
            continue
        producer.send(topic, item)
        summary.published += 1
        summary.users.add(item.user_id)
    producer.flush()
    return summary
