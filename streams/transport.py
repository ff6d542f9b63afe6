"""Faust's Kafka transport with one fix: after a rebalance, re-read partitions that have no committed offset.

After every (re)assignment Faust restores its tables, and the messages its consumer fetched meanwhile are
dropped; Faust then calls aiokafka's `seek_to_committed()` so that they are fetched again. aiokafka only seeks
where the committed offset is > 0: a partition with no committed offset (nothing processed yet, or nothing
committed before the previous owner died) or with offset 0 stays where the dropped fetch left it, and the
messages fetched during the restore are never processed; once a later offset is committed, they are skipped
for good. Seen here with faust-streaming 0.15.3 and aiokafka 0.14: a second worker joining dropped the first
messages of a partition whose previous owner had not committed yet.

The fix: for the partitions whose offsets Faust commits (the agents' source topics, not the changelogs, which
Faust positions itself), seek to the committed offset when it is 0 and to the beginning when there is none,
which is what `auto_offset_reset="earliest"` means. The worker's processing is idempotent, so re-reading is
always safe; skipping never is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        result: Mapping[TP, int] = await self.call_thread(self._seek_to_committed_or_beginning)
        return result

    async def _seek_to_committed_or_beginning(self) -> Mapping[Any, Any]:
        consumer = self._ensure_consumer()
        committed: Mapping[Any, Any] = await consumer.seek_to_committed()
        committed_by_faust = self.consumer.app.topics.acks_enabled_for
        for tp, offset in committed.items():
            if not committed_by_faust(tp.topic):
                continue
            if offset is None:
                await consumer.seek_to_beginning(tp)
            elif offset == 0:
                consumer.seek(tp, 0)
        return committed


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class App(faust.App):
    """faust.App on the fixed transport (for kafka:// brokers)."""

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
