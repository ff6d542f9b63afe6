"""One batch of messages through the worker: decode, fold into state, assess, store, publish, remember.

The order is what makes at-least-once delivery safe:
1. decode each message; poison ones become dead letters;
2. fold each touched user's events into their state and assess it (in a thread: numpy work stays off the
   event loop);
3. store raw rows, meal analyses, derived rows and the users' feed rows (the alerts and tier changes of step 4,
   the analyses) in ONE database transaction (in a thread; transient errors are retried). If the database
   rejects the data, each user's share gets a transaction of its own; a share still rejected is searched
   (bisected) for the events the database refuses, which become dead letters, and the user is planned again
   without them;
4. publish dead letters, alerts and tier changes, and wait until Kafka has them;
5. write the new state to the tables (their changelogs);
6. only then does the agent ack the messages, so their offsets can be committed (Faust flushes the
   changelog before it commits).
A crash anywhere before 6 replays the batch, which changes nothing: state is keyed by event id, rows are
upserts, and derived events carry deterministic ids (so do feed rows, by their source event).
Profiles go to the user_profiles table in a transaction of their own before the profiles table's changelog.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from schemas.derived import Alert, RiskTierChanged, UserProfile
from schemas.events import Event, GlucoseKind, GlucoseReading
from schemas.meal_analysis import MealAnalyzed
from schemas.topics import Topic
from storage.derived import DayKey
from storage.feed import FeedKind, feed_row
from storage.sink import BatchWrite, WriteResult, event_type, is_transient
from streams.days import day_bounds, local_day
from streams.messages import DeadLetter, DeadLetterReason, InMessage, OutMessage, decode_message
from streams.metrics import BpGuideline
from streams.rejections import (
    is_rejection,
    merge_results,
    merge_writes,
    raw_only,
    rejection_message,
    user_share,
)
from streams.rows import Row, glucose_metric_rows, risk_tier_row, user_metric_rows
from streams.state import (
    GLUCOSE_RETENTION_S,
    HOUR_S,
    GlucoseWindow,
    Profile,
    UserState,
    Vitals,
    bucket_from_json,
    bucket_key,
    bucket_to_json,
    hour_of,
)
from streams.steps import (
    apply_event,
    assess,
    changes_state,
    episode_alerts,
    event_alerts,
    is_fresh,
    publications,
    settle,
)
from streams.telemetry import StreamsMetrics

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_RETRY_FIRST_S = 0.5
_RETRY_MAX_S = 30.0
_LOG_BATCH_MESSAGES = 1000
_LOG_BATCH_S = 1.0


class StateStore(Protocol):
    """A key-value table whose writes go to a changelog partition (the source message's partition)."""

    def get(self, key: str) -> Any: ...

    def put(self, partition: int, key: str, value: Any) -> None: ...

    def delete(self, partition: int, key: str) -> None: ...


class Publisher(Protocol):
    async def publish(self, messages: Sequence[OutMessage]) -> None:
        """Send and wait until every message is acknowledged by Kafka; raise if any is not."""


class BatchSink(Protocol):
    def write(self, batch: BatchWrite) -> WriteResult: ...

    def write_profiles(self, profiles: Sequence[UserProfile], deleted_user_ids: Sequence[str]) -> None: ...


class FatalBatchError(RuntimeError):
    """A batch cannot be stored and retrying will not help; its messages must not be acked."""


class StorageRejectedError(FatalBatchError):
    """The database refused the data of a write (streams.rejections.is_rejection); a smaller write may pass."""

    def __init__(self, message: str, error: BaseException) -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class Stores:
    glucose: StateStore  # "user|hour" -> bucket
    vitals: StateStore  # user -> Vitals JSON
    profiles: StateStore  # user -> Profile JSON


@dataclass(frozen=True)
class TopicNames:
    """The topics the worker uses, with the deployment's prefix applied."""

    readings: Topic
    meals: Topic
    meal_analyses: Topic
    profiles: Topic
    dead_letter: str
    alerts: str
    risk_tiers: str


@dataclass
class BatchReport:
    """What one batch did (agents yield it; tests read it)."""

    messages: int = 0
    events: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    users_assessed: int = 0
    alerts: list[Alert] = field(default_factory=list)
    tier_changes: list[RiskTierChanged] = field(default_factory=list)
    written: WriteResult | None = None


@dataclass
class _UserBatch:
    user_id: str
    partition: int
    events: list[Event] = field(default_factory=list)
    newest_timestamp_s: float = 0.0


@dataclass
class _UserOutcome:
    user_id: str
    partition: int
    before: UserState
    after: UserState
    assessed: bool
    alerts: list[Alert]
    tier_change: RiskTierChanged | None
    glucose_rows: list[Row]
    metric_rows: list[Row]
    newest_timestamp_s: float


@dataclass
class _Plan:
    outcomes: list[_UserOutcome]
    write: BatchWrite


@dataclass(frozen=True)
class _Planning:
    """What planning one user's share again takes."""

    users: dict[str, _UserBatch]
    states: dict[str, UserState]
    profiles: dict[str, Profile]
    produced_at: datetime
    #: id(event) -> the message it came from (a rejected event is dead-lettered as that message)
    sources: dict[int, InMessage]


@dataclass
class _Stored:
    """What a batch (or one user's share) left in the database, and the events the database refused."""

    plan: _Plan
    written: WriteResult
    rejected: list[DeadLetter] = field(default_factory=list)


class BatchProcessor:
    """Processes batches for the agents; holds no Faust objects, so tests can drive it with plain stores."""

    def __init__(self, *, stores: Stores, sink: BatchSink, publisher: Publisher, topics: TopicNames,
                 metrics: StreamsMetrics, default_guideline: BpGuideline,
                 clock: Callable[[], float] = time.time, max_cached_windows: int = 2000) -> None:
        self._stores = stores
        self._sink = sink
        self._publisher = publisher
        self.topics = topics
        self._metrics = metrics
        self._default_guideline = BpGuideline(default_guideline)
        self._clock = clock
        # Most recently used last; bounded, since the tables hold the same readings (a miss costs one rebuild).
        self._windows: OrderedDict[str, GlucoseWindow] = OrderedDict()
        self._max_cached_windows = max_cached_windows

    def forget_cached_windows(self) -> None:
        """Drop the in-memory glucose windows; call on every rebalance (another worker may have changed them)."""
        self._windows.clear()

    # -- readings and meals ---------------------------------------------------------------------------------
    async def process_events(self, messages: Sequence[InMessage]) -> BatchReport:
        started = time.perf_counter()
        report = BatchReport(messages=len(messages))
        users: dict[str, _UserBatch] = {}
        events: list[Event] = []
        sources: dict[int, InMessage] = {}
        for message in messages:
            decoded = self._decode(message)
            if isinstance(decoded, DeadLetter):
                report.dead_letters.append(decoded)
                continue
            events.append(decoded)
            sources[id(decoded)] = message
            batch = users.setdefault(decoded.user_id, _UserBatch(decoded.user_id, message.partition))
            batch.events.append(decoded)
            batch.newest_timestamp_s = max(batch.newest_timestamp_s, message.timestamp_s)
        report.events = len(events)
        states = {user_id: self._load(batch) for user_id, batch in users.items()}
        profiles = {user_id: Profile.from_json(self._stores.profiles.get(user_id)) for user_id in users}
        produced_at = datetime.fromtimestamp(self._clock(), UTC)
        loaded = time.perf_counter()
        plan = await asyncio.to_thread(self._plan, list(users.values()), states, profiles, events, produced_at)
        planned = time.perf_counter()
        stored = await self._write(plan, _Planning(users, states, profiles, produced_at, sources))
        plan, report.written = stored.plan, stored.written
        report.dead_letters += stored.rejected
        written = time.perf_counter()
        out = [dead.to_message(self.topics.dead_letter) for dead in report.dead_letters]
        for outcome in plan.outcomes:
            out += [OutMessage(self.topics.alerts, a.user_id.encode(), encode_derived(a), _headers(a.type))
                    for a in outcome.alerts]
            if outcome.tier_change is not None:
                change = outcome.tier_change
                out.append(OutMessage(self.topics.risk_tiers, change.user_id.encode(), encode_derived(change),
                                      _headers(change.type)))
        if out:
            await self._publisher.publish(out)
        published = time.perf_counter()
        self._remember(plan.outcomes)
        self._observe(report, plan, started)
        seconds = time.perf_counter() - started
        # Large or slow batches are worth a line (a backlog being worked off); small ones only at debug level.
        level = logging.INFO if report.messages >= _LOG_BATCH_MESSAGES or seconds >= _LOG_BATCH_S else logging.DEBUG
        log.log(level, "batch stored", extra={
            "messages": report.messages, "users": len(users), "dead_letters": len(report.dead_letters),
            "published": len(out), "load_s": round(loaded - started, 3), "assess_s": round(planned - loaded, 3),
            "db_s": round(written - planned, 3), "publish_s": round(published - written, 3),
            "total_s": round(seconds, 3)})
        return report

    def _decode(self, message: InMessage) -> Event | DeadLetter:
        for topic in (self.topics.readings, self.topics.meals, self.topics.meal_analyses):
            if message.topic == topic.name:
                decoded: Event | DeadLetter = decode_message(topic, message)
                return decoded
        return DeadLetter(message, DeadLetterReason.UNKNOWN_TOPIC, f"topic: {message.topic} is not consumed here")

    def _load(self, batch: _UserBatch) -> UserState:
        vitals = Vitals.from_json(self._stores.vitals.get(batch.user_id))
        window = self._windows.get(batch.user_id)
        if window is None:
            window = self._load_window(batch, vitals)
        else:
            self._windows.move_to_end(batch.user_id)
        return UserState(window=window, vitals=vitals)

    def _load_window(self, batch: _UserBatch, vitals: Vitals) -> GlucoseWindow:
        # Buckets can only exist up to the newest hour recorded in vitals, or up to the newest CGM reading
        # of this batch (a crash may have stored a bucket but not the vitals that point to it; then the
        # batch is a replay that includes that reading).
        hours = [hour_of(e.occurred_at.timestamp()) for e in batch.events
                 if isinstance(e, GlucoseReading) and e.kind is GlucoseKind.CGM]
        if vitals.glucose_newest_hour is not None:
            hours.append(vitals.glucose_newest_hour)
        if not hours:
            return GlucoseWindow()
        newest = max(hours)
        buckets = {}
        for hour in range(newest - GLUCOSE_RETENTION_S // HOUR_S - 1, newest + 1):
            stored = self._stores.glucose.get(bucket_key(batch.user_id, hour))
            if stored:
                buckets[hour] = bucket_from_json(stored)
        return GlucoseWindow(buckets)

    def _plan(self, users: list[_UserBatch], states: dict[str, UserState], profiles: dict[str, Profile],
              events: list[Event], produced_at: datetime) -> _Plan:
        outcomes = [self._user_outcome(batch, states[batch.user_id], profiles[batch.user_id], produced_at)
                    for batch in users]
        # An analysis counts on the day of its meal (occurred_at is the meal's), whether or not the meal is stored.
        days = [self._day_key(event, profiles[event.user_id]) for event in events]
        analyses = [event for event in events if isinstance(event, MealAnalyzed)]
        feed = [feed_row(alert) for o in outcomes for alert in o.alerts]
        feed += [feed_row(o.tier_change) for o in outcomes if o.tier_change is not None]
        feed += [feed_row(analysis, FeedKind.MEAL_ANALYSIS) for analysis in analyses]
        return _Plan(outcomes=outcomes, write=BatchWrite(
            events=[event for event in events if not isinstance(event, MealAnalyzed)],
            meal_analyses=analyses,
            glucose_metrics=[row for o in outcomes for row in o.glucose_rows],
            user_metrics=[row for o in outcomes for row in o.metric_rows],
            risk_tiers=[risk_tier_row(o.tier_change) for o in outcomes if o.tier_change is not None],
            days=days,
            feed=feed,
        ))

    @staticmethod
    def _day_key(event: Event, profile: Profile) -> DayKey:
        day = local_day(event.occurred_at, profile.time_zone)
        start, end = day_bounds(day, profile.time_zone)
        return DayKey(event.user_id, day, profile.time_zone, start, end)

    def _user_outcome(self, batch: _UserBatch, before: UserState, profile: Profile,
                      produced_at: datetime) -> _UserOutcome:
        state = before
        for event in batch.events:
            state = apply_event(state, event)
        state = settle(state)
        guideline = BpGuideline(profile.bp_guideline or self._default_guideline)
        candidates: list[Alert] = []
        assessment = None
        glucose_rows: list[Row] = []
        metric_rows: list[Row] = []
        try:
            for event in batch.events:
                candidates += event_alerts(event, produced_at)
            # A replay re-assesses too: the tier or alerts it would publish may not have been recorded yet.
            if any(changes_state(event) for event in batch.events):
                assessment = assess(state, guideline)
            if assessment is not None:
                fresh_cgm = any(isinstance(e, GlucoseReading) and e.kind is GlucoseKind.CGM and is_fresh(e)
                                for e in batch.events)
                if fresh_cgm:
                    candidates += episode_alerts(batch.user_id, state, assessment, produced_at)
                newest = state.window.newest()
                glucose_end = newest[0] if newest is not None else None
                if glucose_end is not None:
                    glucose_rows = glucose_metric_rows(batch.user_id, assessment, glucose_end)
                metric_rows = user_metric_rows(batch.user_id, assessment, glucose_end)
        except Exception:
            # The events are valid and still stored; only this user's derived values wait for their next event.
            log.exception("assessment failed", extra={"partition": batch.partition})
            self._metrics.assessment_errors.inc()
            assessment, glucose_rows, metric_rows = None, [], []
        published = publications(batch.user_id, state.vitals, assessment, candidates, produced_at)
        return _UserOutcome(
            user_id=batch.user_id,
            partition=batch.partition,
            before=before,
            after=UserState(window=state.window, vitals=published.vitals),
            assessed=assessment is not None,
            alerts=published.alerts,
            tier_change=published.tier_change,
            glucose_rows=glucose_rows,
            metric_rows=metric_rows,
            newest_timestamp_s=batch.newest_timestamp_s,
        )

    async def _write(self, plan: _Plan, planning: _Planning) -> _Stored:
        """Store the plan in one transaction; if the database rejects its data, store it user by user."""
        batch = plan.write
        size = len(batch.events) + len(batch.meal_analyses)
        try:
            return _Stored(plan, await self._retrying(lambda: self._sink.write(batch), f"a batch of {size} events"))
        except StorageRejectedError as rejected:
            log.warning("database rejected a batch; storing it user by user", extra={
                "events": size, "users": len(planning.users), "error": rejection_message(rejected.error)})
        shares = [await self._write_user(plan, user, planning) for user in planning.users.values()]
        outcomes = [outcome for share in shares for outcome in share.plan.outcomes]
        return _Stored(_Plan(outcomes, merge_writes([share.plan.write for share in shares])),
                       merge_results([share.written for share in shares], []),
                       [dead for share in shares for dead in share.rejected])

    async def _write_user(self, plan: _Plan, user: _UserBatch, planning: _Planning) -> _Stored:
        share = _Plan([o for o in plan.outcomes if o.user_id == user.user_id], user_share(plan.write, user.user_id))
        if len(planning.users) > 1:  # with one user, the share is the batch that was just rejected
            try:
                return _Stored(share, await self._retrying(lambda: self._sink.write(share.write),
                                                           f"{len(user.events)} events of one user"))
            except StorageRejectedError:
                pass
        probes: list[WriteResult] = []
        refused = await self._bisect(user.events, probes)
        rejected = [DeadLetter(planning.sources[id(event)], DeadLetterReason.STORAGE_REJECTED,
                               f"database: {message}") for event, message in refused]
        refused_ids = {id(event) for event, _ in refused}
        kept = replace(user, events=[e for e in user.events if id(e) not in refused_ids])
        for dead in rejected:
            log.warning("database rejected an event; dead-lettered", extra={
                "partition": dead.message.partition, "offset": dead.message.offset, "error": dead.error})
        if not kept.events:
            return _Stored(_Plan([], BatchWrite(events=[])), merge_results([], probes), rejected)
        if rejected:
            uid = user.user_id
            again = await asyncio.to_thread(self._plan, [kept], {uid: planning.states[uid]},
                                            {uid: planning.profiles[uid]}, kept.events, planning.produced_at)
            try:
                written = await self._retrying(lambda: self._sink.write(again.write),
                                               f"{len(kept.events)} events of one user")
                return _Stored(again, merge_results([written], probes), rejected)
            except StorageRejectedError:
                pass
        # The events are stored; the user's derived values wait for their next event, as after a failed assessment.
        log.error("database rejected a user's derived rows; storing their events only",
                  extra={"partition": user.partition, "events": len(kept.events)})
        self._metrics.assessment_errors.inc()
        raw = raw_only(kept.events)
        written = await self._retrying(lambda: self._sink.write(raw), f"{len(kept.events)} events of one user")
        return _Stored(_Plan([self._unassessed(kept, planning.states[user.user_id])], raw),
                       merge_results([written], probes), rejected)

    async def _bisect(self, events: list[Event], probes: list[WriteResult]) -> list[tuple[Event, str]]:
        """The events the database refuses even alone, with its message; the others end up stored (raw rows)."""
        raw = raw_only(events)
        try:
            probes.append(await self._retrying(lambda: self._sink.write(raw), f"{len(events)} events of one user"))
            return []
        except StorageRejectedError as rejected:
            if len(events) == 1:
                return [(events[0], rejection_message(rejected.error))]
        middle = len(events) // 2
        return await self._bisect(events[:middle], probes) + await self._bisect(events[middle:], probes)

    @staticmethod
    def _unassessed(user: _UserBatch, before: UserState) -> _UserOutcome:
        """The user's state with the batch's events but nothing assessed or published (so nothing recorded as
        published either: the next batch assesses and publishes)."""
        state = before
        for event in user.events:
            state = apply_event(state, event)
        state = settle(state)
        return _UserOutcome(user_id=user.user_id, partition=user.partition, before=before, after=state,
                            assessed=False, alerts=[], tier_change=None, glucose_rows=[], metric_rows=[],
                            newest_timestamp_s=user.newest_timestamp_s)

    async def _retrying(self, write: Callable[[], _T], what: str) -> _T:
        """Run a blocking database write in a thread until it succeeds; transient errors are retried forever."""
        delay_s = _RETRY_FIRST_S
        while True:
            started = time.perf_counter()
            try:
                result = await asyncio.to_thread(write)
            except Exception as error:
                if is_rejection(error):
                    raise StorageRejectedError(f"database rejected {what}: {error}", error) from error
                if not is_transient(error):
                    raise FatalBatchError(f"database rejected {what}: {error}") from error
                self._metrics.db_retries.inc()
                log.warning("database unavailable; retrying the batch", extra={"retry_in_s": delay_s,
                                                                              "error": str(error)[:500]})
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, _RETRY_MAX_S)
                continue
            self._metrics.db_write_seconds.observe(time.perf_counter() - started)
            return result

    def _remember(self, outcomes: list[_UserOutcome]) -> None:
        for outcome in outcomes:
            before, after = outcome.before, outcome.after
            user_id, partition = outcome.user_id, outcome.partition
            for hour, bucket in after.window.buckets.items():
                if before.window.buckets.get(hour) is not bucket:
                    self._stores.glucose.put(partition, bucket_key(user_id, hour), bucket_to_json(bucket))
            for hour in before.window.buckets.keys() - after.window.buckets.keys():
                self._stores.glucose.delete(partition, bucket_key(user_id, hour))
            if after.vitals != before.vitals:
                self._stores.vitals.put(partition, user_id, after.vitals.to_json())
            self._windows[user_id] = after.window
            self._windows.move_to_end(user_id)
        while len(self._windows) > self._max_cached_windows:
            self._windows.popitem(last=False)

    def _observe(self, report: BatchReport, plan: _Plan, started: float) -> None:
        metrics = self._metrics
        metrics.batch_size.labels("events").observe(report.messages)
        written = report.written
        if written is not None:
            for kind, count in written.events.items():
                new = written.new_rows.get(kind, 0)
                metrics.events.labels(kind, "stored").inc(new)
                metrics.events.labels(kind, "duplicate").inc(count - new)
            # One set per (type, source), not per event: a batch holds few distinct pairs and many events.
            for kind, source in {(event_type(event), event.source.value) for event in plan.write.events}:
                metrics.last_reading.labels(kind, source).set_to_current_time()
        for dead in report.dead_letters:
            metrics.dead_letters.labels(dead.reason.value).inc()
            metrics.events.labels(_header_type(dead.message), "dead_letter").inc()
        now = self._clock()
        for outcome in plan.outcomes:
            if outcome.assessed:
                report.users_assessed += 1
                metrics.reading_to_tier_seconds.observe(max(0.0, now - outcome.newest_timestamp_s))
            for alert in outcome.alerts:
                metrics.alerts.labels(alert.kind.value).inc()
            report.alerts += outcome.alerts
            if outcome.tier_change is not None:
                metrics.tier_changes.labels(outcome.tier_change.tier.value).inc()
                report.tier_changes.append(outcome.tier_change)
        metrics.batch_seconds.labels("events").observe(time.perf_counter() - started)

    # -- profiles -------------------------------------------------------------------------------------------
    async def process_profiles(self, messages: Sequence[InMessage]) -> BatchReport:
        """Keep the profiles table and user_profiles current; a null value (tombstone) deletes a user's profile.

        The database goes first: if the worker dies before the changelog write and the ack, the batch is replayed
        and the upserts (older never replaces newer) and deletes change nothing.
        """
        started = time.perf_counter()
        report = BatchReport(messages=len(messages))
        updates: list[tuple[int, str, Profile | None]] = []
        # The last message per user wins, as on the compacted topic; None: a tombstone.
        final: dict[str, UserProfile | None] = {}
        for message in messages:
            if message.value is None and message.key:
                user_id = message.key.decode(errors="replace")
                updates.append((message.partition, user_id, None))
                final[user_id] = None
                continue
            decoded = decode_message(self.topics.profiles, message)
            if isinstance(decoded, DeadLetter):
                report.dead_letters.append(decoded)
                continue
            profile: UserProfile = decoded
            guideline = profile.bp_guideline.value if profile.bp_guideline is not None else None
            updates.append((message.partition, profile.user_id, Profile(profile.time_zone, guideline)))
            final[profile.user_id] = profile
        if final:
            stored = [p for p in final.values() if p is not None]
            deleted = [user_id for user_id, p in final.items() if p is None]
            await self._retrying(lambda: self._sink.write_profiles(stored, deleted),
                                 f"{len(stored)} profiles and {len(deleted)} deletions")
        if report.dead_letters:
            await self._publisher.publish([d.to_message(self.topics.dead_letter) for d in report.dead_letters])
        for partition, user_id, new in updates:
            if new is None:
                self._stores.profiles.delete(partition, user_id)
            else:
                self._stores.profiles.put(partition, user_id, new.to_json())
        report.events = len(updates)
        metrics = self._metrics
        metrics.batch_size.labels("profiles").observe(report.messages)
        metrics.events.labels("user_profile", "stored").inc(len(updates))
        for dead in report.dead_letters:
            metrics.dead_letters.labels(dead.reason.value).inc()
            metrics.events.labels("user_profile", "dead_letter").inc()
        metrics.batch_seconds.labels("profiles").observe(time.perf_counter() - started)
        return report


def encode_derived(event: Alert | RiskTierChanged) -> bytes:
    return event.model_dump_json().encode()


def _header_type(message: InMessage) -> str:
    # Producers name the event type in a header; a poison message may not, or may lie, so keep it short.
    for name, value in message.headers:
        if name == "type" and value:
            return value.decode(errors="replace")[:32]
    return "unknown"


def _headers(kind: str) -> list[tuple[str, bytes]]:
    return [("type", kind.encode()), ("schema_version", b"1")]

