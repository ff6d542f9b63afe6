"""Drive the fleet: D simulated days of history (at --speed, or as fast as the pipeline takes them), the scripted
moments, then live data in real time until stopped. Runs in a thread of its own; the display reads its tally.

Items are batched per person and route, as apps and uploaders do: a batch goes when it is full or when its first
item has waited FLUSH_AFTER_S. HTTP batches are posted by a few threads (a bounded number in flight, so a slow API
slows the driver instead of piling up requests); Kafka events go through the project's producer.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from producers.client import EventProducer
from producers.simulator import SimulatedEvent, simulate
from producers.simulator.publish import SimulatedClock
from producers.simulator.user import UserSimulator
from vitalstream.demo import scenario
from vitalstream.demo.api_client import ApiClient
from vitalstream.demo.fleet import DemoUser, Path, sign_in
from vitalstream.demo.uploads import NIGHTSCOUT_ENTRIES, NIGHTSCOUT_TREATMENTS, Channel, Upload, upload_for
from vitalstream.object_store import ObjectStore

log = logging.getLogger(__name__)

#: Items per request, at most (the API takes up to 1000).
MAX_BATCH = 500
#: A batch is sent once its first item has waited this long (real seconds).
FLUSH_AFTER_S = 1.0
HTTP_THREADS = 3
MAX_IN_FLIGHT = 6
#: How far ahead the live phase is planned (it runs until stopped).
LIVE_DAYS = 365.0


class Phase:
    SIGNING_UP = "signing up"
    HISTORY = "history"
    SCENARIO = "scripted moments"
    LIVE = "live"
    STOPPED = "stopped"


@dataclass
class Tally:
    """What the driver has done; updated by its threads, read by the display (copy under the lock)."""

    phase: str = Phase.SIGNING_UP
    history_fraction: float = 0.0
    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    photos: int = 0
    moments: list[scenario.Moment] = field(default_factory=list)
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, via: Path, items: int, ok: bool) -> None:
        with self.lock:
            (self.sent if ok else self.failed)[via.value] += items
            self.requests += via is not Path.KAFKA

    def copy(self) -> Tally:
        with self.lock:
            return Tally(self.phase, self.history_fraction, Counter(self.sent), Counter(self.failed), self.requests,
                         self.photos, list(self.moments), self.error)


@dataclass(frozen=True)
class Plan:
    seed: int
    start: datetime
    days: float
    #: Simulated seconds per real second for the history; None: as fast as the pipeline takes it.
    speed: float | None
    live: bool = True

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


def simulated_time_zones(plan: Plan, users: int) -> list[str]:
    """The time zone the simulator gives each of the first `users` people (their profiles say it to the API)."""
    return [UserSimulator(plan.seed, index, plan.start, plan.end).profile.time_zone for index in range(users)]


@dataclass
class _Batch:
    channel: Channel
    user: DemoUser
    documents: list[dict[str, Any]] = field(default_factory=list)
    first_at: float = field(default_factory=time.monotonic)
    #: Sent with ingest requests, so a retried request is recognised and published once.
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: A photo upload: one meal (documents[0] holds its form fields) and this image.
    photo: bytes | None = None

    def request(self) -> dict[str, Any]:
        """The request's body arguments: a JSON batch, or a multipart form with the photo."""
        if self.photo is None:
            return {"json": self.documents}
        return {"data": self.documents[0], "files": {"image": ("meal.jpg", self.photo, "image/jpeg")}}


class Sender:
    """Batches uploads and sends them: HTTP batches (and photos, one per request) from a small pool of threads,
    Kafka events inline. `store` is for the scripted moments that bypass the API."""

    def __init__(self, api: ApiClient, producer: EventProducer, store: ObjectStore, tally: Tally) -> None:
        self.api, self.producer, self.store, self.tally = api, producer, store, tally
        self._batches: dict[tuple[int, Channel], _Batch] = {}
        self._pool = ThreadPoolExecutor(HTTP_THREADS, thread_name_prefix="demo-post")
        self._in_flight = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self._kafka_reported = 0
        self._last_check = time.monotonic()

    def add(self, upload: Upload) -> None:
        if upload.event is not None and upload.topic is not None:
            self.producer.send(upload.topic, upload.event)
            return
        assert upload.document is not None
        if upload.photo is not None:  # the API stores the photo, then publishes the meal
            self._post(_Batch(upload.channel, upload.user, [upload.document], photo=upload.photo))
            return
        key = (upload.user.index, upload.channel)
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = _Batch(upload.channel, upload.user)
        batch.documents.append(upload.document)
        if len(batch.documents) >= MAX_BATCH:
            self._post(self._batches.pop(key))

    def flush_due(self, force: bool = False) -> None:
        """Send batches that have waited long enough (all of them with `force`); report Kafka deliveries."""
        now = time.monotonic()
        if not force and now - self._last_check < 0.25:
            return
        self._last_check = now
        for key in [k for k, b in self._batches.items() if force or now - b.first_at >= FLUSH_AFTER_S]:
            self._post(self._batches.pop(key))
        self.producer.poll(0)
        self._report_kafka()

    def drain(self, timeout_s: float = 60.0) -> None:
        """Send everything buffered and wait until Kafka and the API have acknowledged it."""
        self.flush_due(force=True)
        self.producer.flush(timeout_s)
        self._report_kafka()
        for _ in range(MAX_IN_FLIGHT):  # every permit back: no request in flight
            self._in_flight.acquire(timeout=timeout_s)
        for _ in range(MAX_IN_FLIGHT):
            self._in_flight.release()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _report_kafka(self) -> None:
        delivered = self.producer.counts.delivered
        if delivered > self._kafka_reported:
            self.tally.count(Path.KAFKA, delivered - self._kafka_reported, ok=True)
            self._kafka_reported = delivered

    def _post(self, batch: _Batch) -> None:
        self._in_flight.acquire()
        future = self._pool.submit(self._send, batch)
        future.add_done_callback(lambda _: self._in_flight.release())

    def _send(self, batch: _Batch) -> None:
        route = batch.channel.route
        assert route is not None
        try:
            response = self.api.send("POST", route, headers=self._headers(batch), **batch.request())
            if response.status_code == 401 and batch.channel.credential == "app":
                batch.user.access_token = sign_in(self.api, batch.user.email)  # the access token expired
                response = self.api.send("POST", route, headers=self._headers(batch), **batch.request())
        except Exception as error:  # a failed batch is counted and logged; the demo goes on
            log.warning("upload failed", extra={"route": route, "items": len(batch.documents), "error": str(error)})
            self.tally.count(batch.channel.via, len(batch.documents), ok=False)
            return
        ok = response.status_code in (200, 202)
        if not ok:
            log.warning("upload refused", extra={"route": route, "status": response.status_code,
                                                 "items": len(batch.documents), "body": response.text[:500]})
        self.tally.count(batch.channel.via, len(batch.documents), ok=ok)
        if ok and batch.photo is not None:
            with self.tally.lock:
                self.tally.photos += 1

    def _headers(self, batch: _Batch) -> dict[str, str]:
        user, credential = batch.user, batch.channel.credential
        if credential == "nightscout":
            assert user.nightscout_api_secret is not None
            return {"api-secret": user.nightscout_api_secret}
        headers = user.bearer() if credential == "app" else {"X-API-Key": user.device_keys[credential]}  # type: ignore[index]
        if batch.channel.route not in (NIGHTSCOUT_ENTRIES, NIGHTSCOUT_TREATMENTS):
            headers["Idempotency-Key"] = batch.key
        return headers


class Driver:
    """The thread that sends the fleet's data. `stop` ends it; `error` holds what ended it early, if anything."""

    def __init__(self, fleet: list[DemoUser], plan: Plan, sender: Sender, tally: Tally, stop: threading.Event,
                 on_moments: Callable[[list[scenario.Moment]], None] | None = None) -> None:
        self.fleet, self.plan, self.sender, self.tally, self.stop = fleet, plan, sender, tally, stop
        self._on_moments = on_moments
        self.history_done = threading.Event()
        profiles = [UserSimulator(plan.seed, user.index, plan.start, plan.end).profile for user in fleet]
        self._by_sim_id = {profile.user_id: user for profile, user in zip(profiles, fleet, strict=True)}
        self._zones = {user.index: ZoneInfo(profile.time_zone) for profile, user in zip(profiles, fleet, strict=True)}
        self._thread = threading.Thread(target=self._run, name="demo-driver", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._set_phase(Phase.HISTORY)
            clock = None if self.plan.speed is None else SimulatedClock(self.plan.start, self.plan.speed)
            self._send(simulate(self.plan.seed, len(self.fleet), self.plan.start, self.plan.days), clock,
                       history=True)
            if self.stop.is_set():
                return
            self.sender.drain()
            self.history_done.set()
            log.info("history sent", extra={"sent": dict(self.tally.copy().sent)})
            self._set_phase(Phase.SCENARIO)
            moments = scenario.play(self.fleet, self.sender.api, self.sender.producer, self.sender.store)
            with self.tally.lock:
                self.tally.moments = moments
            if self._on_moments is not None:
                self._on_moments(moments)
            if not self.plan.live:
                return
            self._set_phase(Phase.LIVE)
            # From where the history ended; what happened since is sent at once, then each event when it happens.
            self._send(simulate(self.plan.seed, len(self.fleet), self.plan.end, LIVE_DAYS),
                       SimulatedClock(datetime.now(UTC), 1.0), history=False)
        except Exception as error:
            log.exception("the driver stopped")
            with self.tally.lock:
                self.tally.error = f"{type(error).__name__}: {error}"
        finally:
            try:
                self.sender.drain(timeout_s=15.0)
            except Exception as error:  # shutting down: say so, do not mask what ended the run
                log.warning("draining the last uploads failed", extra={"error": str(error)})
            self.sender.close()
            self._set_phase(Phase.STOPPED)

    def _send(self, events: Iterator[SimulatedEvent], clock: SimulatedClock | None, history: bool) -> None:
        span_s = max((self.plan.end - self.plan.start).total_seconds(), 1.0)
        for count, item in enumerate(events):
            if clock is not None:
                while (wait_s := clock.real_seconds_until(item.event.received_at)) > 0:
                    self.sender.flush_due()
                    if self.stop.wait(min(wait_s, 0.2)):
                        return
            elif self.stop.is_set():
                return
            user = self._by_sim_id[item.event.user_id]
            self.sender.add(upload_for(item, user, self._zones[user.index]))
            self.sender.flush_due()
            if history and count % 256 == 0:
                with self.tally.lock:
                    self.tally.history_fraction = (item.event.received_at - self.plan.start).total_seconds() / span_s
        if history:
            with self.tally.lock:
                self.tally.history_fraction = 1.0

    def _set_phase(self, phase: str) -> None:
        with self.tally.lock:
            self.tally.phase = phase
