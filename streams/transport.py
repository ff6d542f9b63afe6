"""Three fixes to faust-streaming 0.15.3 (with aiokafka 0.14) that otherwise skip messages after a rebalance.

After every (re)assignment Faust restores its tables with the source partitions paused; messages its consumer
had already fetched for them are dropped, and once the tables are restored Faust seeks each source partition
back to its committed offset to fetch them again. Two things go wrong there:

1. Faust resumes the source partitions BEFORE that seek (`Recovery.on_recovery_completed`), and the seek takes
   a while (a committed-offset request per partition): messages fetched from the advanced position are
   delivered, the seek then resets Faust's read offsets, later deliveries register the dropped range as a
   "gap" (treated as done when committing) and the re-fetched messages are dropped as already read. Seen
   here: a worker restarted after SIGKILL lost about one fetch (~50 messages) per partition. Fix: seek first,
   resume after (`Recovery` below).
2. aiokafka's `seek_to_committed()` only seeks where the committed offset is > 0: a partition with no committed
   offset (nothing committed before its previous owner died, or nothing processed yet) or with offset 0 stays
   where the dropped fetch left it. Seen here: a second worker joining never processed the first messages of
   such a partition. Fix: seek there to 0, or to the beginning when there is no committed offset (what
   `auto_offset_reset="earliest"` means), for the topics whose offsets Faust commits (agents' sources, not
   changelogs, which Faust positions itself).
3. Messages fetched before a rebalance that reach a stream afterwards are skipped as stale, and acked; if the
   partition stays with this worker, that ack lets a commit pass them before they are fetched and processed
   again. Fix: acks of messages from an earlier consumer generation are ignored (`_Consumer.ack`); those
   messages are fetched again after the seek, and an in-flight batch of the old generation is re-processed.

The worker's processing is idempotent, so re-reading is always safe; skipping never is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import faust
from faust.tables.manager import TableManager as FaustTableManager
from faust.tables.recovery import Recovery as FaustRecovery
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        result: Mapping[TP, int] = await self.call_thread(self._seek_to_committed_or_beginning)
        return result

    async def _seek_to_committed_or_beginning(self) -> Mapping[Any, Any]:
        consumer = self._ensure_consumer()
        committed: Mapping[Any, Any] = await consumer.seek_to_committed()
        committed_by_faust = self.consumer.app.topics.acks_enabled_for
        never_committed = []
        for tp, offset in committed.items():
            if not committed_by_faust(tp.topic):
                continue
            if offset is None:
                never_committed.append(tp)
            elif offset == 0:
                consumer.seek(tp, 0)
        if never_committed:
            # One reset for all: each seek_to_beginning waits for the fetcher to serve it (seconds while fetches
            # are in flight), so one call per partition made a restart wait ~3 s per never-committed partition.
            await consumer.seek_to_beginning(*never_committed)
        return committed


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def ack(self, message: Message) -> bool:
        """Fix 3: an ack from an earlier generation must not make its offset committable."""
        if message.generation_id != self.app.consumer_generation_id:
            return False
        return bool(super().ack(message))


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class Recovery(FaustRecovery):
    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """Faust's own, with the source partitions resumed only after they were sought (fix 1)."""
        consumer = self.app.consumer
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [asyncio.ensure_future(table.on_recovery_completed(self.actives_for_table[table],
                                                                       self.standbys_for_table[table]))
                     for table in self.tables.values()]
        if callbacks:
            await asyncio.wait(callbacks)
        assignment = consumer.assignment()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning(f"Recovery rebalancing again app id {self.app.consumer_generation_id} "
                             f"param {generation_id}")
            return
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        self.completed.set()
        self.app.flow_control.resume()
        consumer.resume_flow()
        await self.app._fetcher.maybe_start()  # type: ignore[attr-defined]
        self.tables.on_actives_ready()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")


class TableManager(FaustTableManager):
    @property
    def recovery(self) -> FaustRecovery:
        if self._recovery is None:
            self._recovery = Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


class App(faust.App):
    """faust.App with both fixes (for kafka:// brokers)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, TableManager=TableManager, **kwargs)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
