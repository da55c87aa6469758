"""The hold sweeper: no hold stays open past its deadline.

A hold still open at its deadline belongs to a submit whose outcome nobody recorded: the process
died, or the database failed, between sending upstream and settling. Before it resolves such a
hold the sweeper asks the channels that claimed the task in a callback (``gateway.tasks.
callbacks``): if one of them has it, the task exists and its charge is kept (the poller takes it
from there); otherwise the hold is released, and the task becomes REJECTED (MODAL for a modal
confirmation). A channel that cannot be asked counts as not having the task.
"""

from __future__ import annotations

import time

import asyncpg
import structlog

from gateway.billing.holds import Billing
from gateway.domain import Channel
from gateway.errors import UpstreamError
from gateway.routing.directory import ChannelDirectory
from gateway.storage import holds as hold_store
from gateway.storage import task_sync
from gateway.storage.holds import Held
from gateway.upstream.client import UpstreamClient

log = structlog.get_logger(__name__)

EXPIRED_REASON = "hold expired unresolved"
SWEEP_BUDGET_S = 10.0


class HoldSweeper:
    def __init__(
        self,
        pool: asyncpg.Pool,
        billing: Billing,
        channels: ChannelDirectory,
        upstream: UpstreamClient,
    ) -> None:
        self._pool = pool
        self._billing = billing
        self._channels = channels
        self._upstream = upstream

    async def sweep(self, limit: int = 1000) -> tuple[int, int]:
        """Resolve up to ``limit`` expired holds, oldest first: (settled, released)."""
        settled = released = 0
        deadline = time.monotonic() + SWEEP_BUDGET_S
        for held, task_status in await hold_store.expired_holds(self._pool, limit):
            if time.monotonic() > deadline:
                break  # the rest in the next round: polling must not wait on the sweep
            try:
                kept, freed = await self._resolve(held, task_status)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("hold_sweep_failed", hold_id=held.hold_id, error=str(exc))
                continue
            settled += kept
            released += freed
        return settled, released

    async def _resolve(self, held: Held, task_status: str) -> tuple[int, int]:
        found = await self._upstream_task(held.task_id) if task_status == "SUBMITTING" else None
        if found is not None:
            channel, upstream_id = found
            return int(await self._settle(held, channel, upstream_id)), 0
        freed = await self._billing.release(
            held,
            task_status="MODAL" if task_status == "MODAL" else "REJECTED",
            reason=EXPIRED_REASON,
        )
        return 0, int(freed)

    async def _settle(self, held: Held, channel: Channel, upstream_id: str) -> bool:
        settled = await self._billing.settle(
            held,
            status="SUBMITTED",
            channel_id=channel.id,
            upstream_task_id=upstream_id,
            description="recovered: the channel has the task though its answer was lost",
            properties={},
        )
        log.warning("hold_recovered", task_id=held.task_id, channel=channel.name, settled=settled)
        return settled

    async def _upstream_task(self, task_id: int) -> tuple[Channel, str] | None:
        """The first claimed (channel, upstream id) whose channel says it has the task."""
        for channel_id, upstream_id in await task_sync.claims(self._pool, task_id):
            channel = await self._channels.get(channel_id)
            if channel is None:
                continue
            try:
                found = await self._upstream.list_by_condition(channel, [upstream_id])
            except UpstreamError as exc:
                log.warning(
                    "claim_unconfirmed", task_id=task_id, channel=channel.name, error=str(exc)
                )
                continue
            if upstream_id in found.upstream_ids():
                return channel, upstream_id
        return None
