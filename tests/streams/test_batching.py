"""streams.batching.idle_batches with Faust's test harness (agent.test_context): a quiet stream's batch leaves
at once, a busy one fills up to its size, and no event is acked by the batching itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import faust
import pytest
from faust.types import EventT, StreamT

from streams.batching import idle_batches


def batching_app(max_events: int, within_s: float) -> tuple[faust.App, Any]:
    app = faust.App("batching-test", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False,
                    web_enabled=False)
    topic = app.topic("batching-test", key_serializer="raw", value_serializer="raw")

    async def agent(stream: StreamT[Any]) -> AsyncIterator[list[EventT[Any]]]:
        async for events in idle_batches(cast(faust.Stream[Any], stream), max_events, within_s):
            yield events

    registered = app.agent(topic, name="batching-test")(agent)
    app.finalize()
    app.flow_control.resume()
    return app, registered


def test_a_lone_event_leaves_without_waiting_for_the_batch_wait() -> None:
    _, agent_ = batching_app(max_events=100, within_s=5.0)

    async def run() -> tuple[list[list[Any]], float, Any]:
        async with agent_.test_context() as agent:
            started = time.perf_counter()
            event = await agent.put(b"one", key=b"k", wait=False)
            while not agent.results and time.perf_counter() - started < 6:
                await asyncio.sleep(0.001)
            return list(agent.results.values()), time.perf_counter() - started, event

    batches, seconds, event = asyncio.run(run())
    assert [[e.value for e in batch] for batch in batches] == [[b"one"]]
    assert seconds < 1.0, f"a lone event waited {seconds:.2f} s (batch wait 5 s)"
    assert not event.message.acked  # the caller acks, after processing


def test_back_to_back_events_fill_batches_up_to_their_size() -> None:
    _, agent_ = batching_app(max_events=3, within_s=5.0)

    async def run() -> list[list[bytes]]:
        async with agent_.test_context() as agent:
            for index in range(7):
                await agent.put(str(index).encode(), key=b"k", wait=False)
            for _ in range(200):
                if sum(len(b) for b in agent.results.values()) == 7:
                    break
                await asyncio.sleep(0.01)
            return [[e.value for e in batch] for batch in agent.results.values()]

    batches = asyncio.run(run())
    assert [v for batch in batches for v in batch] == [str(i).encode() for i in range(7)]
    assert max(len(batch) for batch in batches) == 3 and len(batches[0]) == 3


@pytest.mark.parametrize(("max_events", "within_s"), [(0, 1.0), (10, 0.0)])
def test_nonsense_sizes_are_refused(max_events: int, within_s: float) -> None:
    async def first() -> None:
        await anext(idle_batches(cast(faust.Stream[Any], object()), max_events, within_s))

    with pytest.raises(ValueError, match="must be positive"):
        asyncio.run(first())
