"""Cancelling a task at its owner's request: it ends CANCEL and its charge is refunded, once.

The cancel is forwarded to the task's channel first, so the work stops there too. A channel that
cannot cancel (no such route, an error, no answer) does not keep the task from ending; a channel
that says the task has already ended does: its state is written instead, and the client told so.
"""

from __future__ import annotations

import asyncpg
import structlog

from gateway import metrics
from gateway.domain import Principal, Task
from gateway.errors import BadRequest, NotFound, UpstreamError
from gateway.routing import flavours
from gateway.routing.directory import ChannelDirectory
from gateway.storage import task_sync
from gateway.storage import tasks as task_store
from gateway.upstream.client import UpstreamClient

log = structlog.get_logger(__name__)

ENDED = frozenset({"SUCCESS", "FAILURE", "CANCEL"})
CANCEL_REASON = "cancelled by the client"


class TaskCanceller:
    def __init__(
        self, pool: asyncpg.Pool, channels: ChannelDirectory, upstream: UpstreamClient
    ) -> None:
        self._pool = pool
        self._channels = channels
        self._upstream = upstream

    async def cancel(self, principal: Principal, task_id: int) -> None:
        """End the caller's task as CANCEL and refund it, once; 404/21 if it is not the
        caller's, 400/21 if it has ended otherwise or has no answer from its channel yet. A task
        that ends CANCEL while this runs (another cancel, the upstream's own answer to this
        one) is cancelled as asked."""
        task = await task_store.get_user_task(self._pool, task_id, principal.user_id)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        if task.status in ENDED:
            raise BadRequest(f"task {task_id} has already ended ({task.status})")
        if task.status == "SUBMITTING":
            raise BadRequest(f"task {task_id} is still being submitted; cancel it once accepted")
        await self._forward(task)
        written = await task_sync.end_tasks(self._pool, [task.id], "CANCEL", CANCEL_REASON)
        metrics.count_ends(written.finished, written.refunded_units)
        if written.changed:
            return
        # Ended meanwhile: by the poller or a callback, often with the upstream's own CANCEL
        # that this request's forward caused. The answer says what the task is now.
        now = await task_store.get_user_task(self._pool, task_id, principal.user_id)
        if now is None or now.status not in ENDED:
            raise BadRequest(f"task {task_id} cannot be cancelled right now; try again")
        if now.status != "CANCEL":
            raise BadRequest(f"task {task_id} has already ended ({now.status})")

    async def _forward(self, task: Task) -> None:
        channel = await self._channels.get(task.channel_id) if task.channel_id else None
        if channel is None or task.upstream_task_id is None:
            return
        if not flavours.offers(channel.flavour, "cancel"):
            return  # an open-source upstream has no cancel: the task ends here all the same
        try:
            answer = await self._upstream.cancel(channel, task.upstream_task_id)
            if answer.code == 1:
                return
            found = await self._upstream.list_by_condition(channel, [task.upstream_task_id])
        except UpstreamError as exc:
            log.info("cancel_not_forwarded", task_id=task.id, channel=channel.name, error=str(exc))
            return
        ended = [u for u in found.updates if u.status in ENDED]
        if ended:
            written = await task_sync.apply_upstream_updates(self._pool, [(task.id, ended[0])])
            metrics.count_ends(written.finished, written.refunded_units)
            raise BadRequest(f"task {task.id} has already ended ({ended[0].status})")
