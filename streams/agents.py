"""The Faust agents: thin `async for` shells around BatchProcessor.

Each agent takes batches with `noack_take`, which never acks by itself: the agent acks a batch's messages
only after the processor has stored and published everything, so no offset is committed before the
database commit. If a batch fails for good, `on_fatal` runs (by default it ends the process at once); the
batch is then never acked and the next worker to own the partition processes it again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, cast

import faust
from faust.types import ChannelT, EventT, StreamT

from streams.batching import idle_batches
from streams.messages import InMessage
from streams.processor import BatchProcessor, BatchReport

log = logging.getLogger(__name__)

#: Exit status of a worker that stopped because a batch could not be stored.
EXIT_BATCH_FAILED = 70

OnFatal = Callable[[BaseException], Awaitable[None]]


async def exit_process(error: BaseException) -> None:
    """End the worker without acking the failed batch; a supervisor restarts it and the batch is replayed."""
    log.critical("a batch could not be processed; exiting without acknowledging it", exc_info=error)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    # os._exit: a clean shutdown would commit offsets of acked messages, which is safe, but Faust may hang
    # on an agent that crashed (RECIPES: a crashed agent can ignore SIGTERM); nothing here needs cleanup.
    os._exit(EXIT_BATCH_FAILED)


def in_message(event: EventT[Any]) -> InMessage:
    message = event.message
    headers = message.headers or []
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    return InMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp_s=message.timestamp,
        headers=[(str(name), value.encode() if isinstance(value, str) else bytes(value or b""))
                 for name, value in pairs],
    )


Handler = Callable[[Sequence[InMessage]], Awaitable[BatchReport]]


def _batch_agent(handler: Handler, batch_size: int, batch_wait_s: float, on_fatal: OnFatal
                 ) -> Callable[[StreamT[Any]], AsyncIterator[BatchReport]]:
    async def agent(stream: StreamT[Any]) -> AsyncIterator[BatchReport]:
        # Batches of events (not values), never acked by the stream; see streams/batching.py for why not noack_take.
        async for events in idle_batches(cast(faust.Stream[Any], stream), batch_size, batch_wait_s):
            try:
                report = await handler([in_message(event) for event in events])
            except asyncio.CancelledError:
                raise  # shutdown or rebalance: not acked, so processed again by whoever owns the partition
            except Exception as error:
                await on_fatal(error)
                raise
            for event in events:
                await stream.ack(event)
            yield report

    return agent


def define_agents(app: faust.App, *, events: ChannelT[Any], profiles: ChannelT[Any], processor: BatchProcessor,
                  batch_size: int, batch_wait_s: float, on_fatal: OnFatal = exit_process
                  ) -> tuple[faust.types.AgentT[Any], faust.types.AgentT[Any]]:
    """Register the events agent (readings, meals, meal analyses) and the profiles agent on `app`; returns both."""
    events_agent = app.agent(events, name="vitalstream.streams.events")(
        _batch_agent(processor.process_events, batch_size, batch_wait_s, on_fatal))
    profiles_agent = app.agent(profiles, name="vitalstream.streams.profiles")(
        _batch_agent(processor.process_profiles, batch_size, batch_wait_s, on_fatal))
    return events_agent, profiles_agent
