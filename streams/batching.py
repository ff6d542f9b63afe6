"""Batches of a Faust stream's events that are flushed as soon as the stream goes quiet.

Faust's `noack_take(max, within)` yields a batch only when it is full or when a timer of `within` seconds
fires, and its timer restarts after every batch: at light load every message waited for the timer, and one that
arrived while a batch was being processed waited for that batch and then a whole `within` more (reading → tier
p99 above 1 s with `within` = 200 ms and batches of ~200 ms).

`idle_batches` keeps `noack_take`'s contract (events, never acked here; at most `max_events`; nothing is added
while a batch is being processed) but flushes a batch when no further event has arrived for `idle_s`, when it
is full, or when its first event has waited `within_s`, whichever comes first. Under a backlog events arrive
back to back, so batches still fill up to `max_events` or `within_s`; at light load a batch leaves a few
milliseconds after its last event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import faust
from faust.types import ChannelT, EventT

#: A stream is quiet when no event came for this long. A fetch already on its way through Faust's queues
#: arrives message after message in microseconds, so this only ends a batch when Kafka has nothing more.
IDLE_S = 0.005


async def idle_batches(stream: faust.Stream[Any], max_events: int, within_s: float,
                       idle_s: float = IDLE_S) -> AsyncIterator[list[EventT[Any]]]:
    """Yield lists of the stream's events (unacked: the caller acks them once processed)."""
    if max_events < 1 or within_s <= 0 or idle_s <= 0:
        raise ValueError(f"max_events ({max_events}), within_s ({within_s}) and idle_s ({idle_s}) must be positive")
    loop = asyncio.get_running_loop()
    buffer: list[EventT[Any]] = []
    added = asyncio.Event()
    consumed = asyncio.Event()
    processing: asyncio.Future[None] | None = None

    async def add_to_buffer(value: Any) -> Any:
        nonlocal processing
        if processing is not None:
            # Hold new events back while the caller processes a batch (as noack_take does): a rebalance in
            # between then leaves them to whoever owns their partition next.
            await processing
        event = stream.current_event
        if event is None:
            raise RuntimeError("a stream event without current_event cannot be batched")
        buffer.append(event)
        added.set()
        if len(buffer) >= max_events:
            consumed.clear()
            await stream.wait(consumed.wait())
        return value

    acks_before = stream.enable_acks
    stream.enable_acks = False
    stream.add_processor(add_to_buffer)
    # Passive: the stream is drained in the background, into the buffer, by its own task (as noack_take does).
    stream._enable_passive(cast(ChannelT[Any], aiter(stream.channel)))
    try:
        while not stream.should_stop:
            if not buffer:
                added.clear()
                if await stream.wait_for_stopped(added.wait()):
                    break
                continue
            first_s = loop.time()
            while len(buffer) < max_events:
                left_s = first_s + within_s - loop.time()
                if left_s <= 0:
                    break
                count = len(buffer)
                added.clear()
                if await stream.wait_for_stopped(added.wait(), timeout=min(idle_s, left_s)):
                    break
                if len(buffer) == count:
                    break  # quiet: nothing came within idle_s
            batch = list(buffer)
            buffer.clear()
            processing = loop.create_future()
            try:
                yield batch
            finally:
                processing.set_result(None)
                processing = None
                consumed.set()
    finally:
        stream.enable_acks = acks_before
        stream._processors.remove(add_to_buffer)
