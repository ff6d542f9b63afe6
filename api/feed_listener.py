"""One LISTEN connection per API process: a NOTIFY on `user_feed` (storage.feed) wakes that user's event streams.

Streams still poll now and then, slowly while the listener is connected and quickly while it is not (after a
database restart, say), so a lost notification delays an event, never loses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url

from storage.feed import FEED_CHANNEL

log = logging.getLogger(__name__)

RECONNECT_S = 2.0


def libpq_url(sqlalchemy_url: str) -> str:
    """postgresql+psycopg://… → postgresql://… (what psycopg itself takes)."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class FeedListener:
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self.listening = False

    @contextmanager
    def subscribe(self, user_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever the user's feed may have grown; clear it before each read."""
        wake = asyncio.Event()
        self._waiters[user_id].add(wake)
        try:
            yield wake
        finally:
            waiters = self._waiters[user_id]
            waiters.discard(wake)
            if not waiters:
                del self._waiters[user_id]

    def _wake(self, user_id: str) -> None:
        for wake in self._waiters.get(user_id, ()):
            wake.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for wake in waiters:
                wake.set()

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after failures."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True,
                                                                 connect_timeout=5) as connection:
                    await connection.execute(f"LISTEN {FEED_CHANNEL}")
                    self.listening = True
                    # Rows appended while nobody listened sent notifications nobody got.
                    self._wake_all()
                    async for notification in connection.notifies():
                        self._wake(notification.payload)
            except (psycopg.Error, OSError) as error:
                log.warning("feed listener lost its connection; streams poll until it is back",
                            extra={"error": str(error).splitlines()[0] if str(error) else type(error).__name__})
            finally:
                self.listening = False
            await asyncio.sleep(RECONNECT_S)
