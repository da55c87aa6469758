"""The in-flight cap of a channel (``channels.max_in_flight``; NULL: none).

A submit takes a place on a capped channel before it is sent there and gives it back when the
channel does not take the task; a task the channel took keeps its place until it ends. A
channel without a cap costs nothing here: no query, no lock. The counting itself, and why it
is exact across replicas, is in ``gateway.storage.slots``.
"""

from __future__ import annotations

import asyncpg

from gateway import metrics
from gateway.domain import Channel
from gateway.storage.slots import Slot, give_back_slot, take_slot


class ChannelSlots:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def take(self, task_id: int, channel: Channel) -> Slot:
        """Whether the task may be sent to the channel now (always, on an uncapped one): see
        ``Slot``."""
        if channel.max_in_flight is None:
            return Slot.TAKEN
        slot = await take_slot(self._pool, task_id, channel.id, channel.max_in_flight)
        if slot is Slot.FULL:
            metrics.CHANNEL_CAP_REFUSALS.labels(channel.name).inc()
        return slot

    async def give_back(self, task_id: int, channel: Channel) -> None:
        """The channel did not take the task."""
        if channel.max_in_flight is not None:
            await give_back_slot(self._pool, task_id)
