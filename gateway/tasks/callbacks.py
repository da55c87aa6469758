"""Upstream callbacks: each submit may ask its channel to POST the task object on every change to
``/upstream/callbacks/{channel's callback token}/{gateway task id}``.

A callback is a hint that arrives early; the poller stays the truth, so a late, duplicate or
out-of-order callback is harmless: one that tells of an earlier stage than the task has reached
is ignored, and an ended task never changes. A callback about a task whose
submit answer the gateway never saw is kept as a claim for the hold sweeper; one about a task
that ended up elsewhere (failed over, refused) is an orphan upstream task, logged for the operator.
"""

from __future__ import annotations

from enum import StrEnum

import asyncpg
import structlog

from gateway import metrics
from gateway.domain import Channel, is_task_id
from gateway.errors import BadRequest, NotFound
from gateway.routing.directory import ChannelDirectory
from gateway.storage import task_sync
from gateway.storage import tasks as task_store
from gateway.tasks.ended import OnEnded, ends_written
from gateway.upstream.task_objects import UnfitTaskObject, read_task_object

log = structlog.get_logger(__name__)

CALLBACK_PATH = "/upstream/callbacks"


def callback_url(base_url: str, channel: Channel, task_id: int) -> str:
    return f"{base_url.rstrip('/')}{CALLBACK_PATH}/{channel.callback_token}/{task_id}"


_STATUS_ORDER = {"NOT_START": 0, "SUBMITTED": 1, "MODAL": 1, "IN_PROGRESS": 2}
_ENDED_STAGE = 3


def _stage(status: str, progress: str) -> tuple[int, int]:
    """How far along a task is, to tell a late callback from a newer one."""
    digits = progress.rstrip("%")
    return _STATUS_ORDER.get(status, _ENDED_STAGE), int(digits) if digits.isdigit() else 0


class Outcome(StrEnum):
    APPLIED = "applied"
    STALE = "stale"
    CLAIMED = "claimed"
    ORPHAN = "orphan"


class Callbacks:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: ChannelDirectory,
        on_ended: OnEnded | None = None,
    ) -> None:
        """``on_ended``: called with the id of a task a callback ended."""
        self._pool = pool
        self._channels = channels
        self._on_ended = on_ended

    async def channel(self, token: str) -> Channel:
        """The channel whose callback URLs carry ``token``; NotFound for any other."""
        channel = await self._channels.by_callback_token(token)
        if channel is None:
            raise NotFound("unknown callback")
        return channel

    async def receive(self, channel: Channel, task_id: str, body: bytes) -> Outcome:
        """Take one callback of ``channel``; NotFound for a task that is not one of the
        gateway's, BadRequest (logged and counted) for a body that is not a fit task object."""
        if not is_task_id(task_id):
            raise NotFound("task not found")
        try:
            update = read_task_object(body)
        except UnfitTaskObject as unfit:
            metrics.UPSTREAM_TASKS_REFUSED.labels(channel.name, unfit.reason).inc()
            log.warning("upstream_task_refused", channel=channel.name, error=str(unfit))
            raise BadRequest(f"not a task object the gateway applies: {unfit}") from None
        task = await task_store.get_task(self._pool, int(task_id))
        if task is None:
            raise NotFound(f"task {task_id} not found")
        upstream_id = update.upstream_task_id
        if task.channel_id == channel.id and task.upstream_task_id == upstream_id:
            if _stage(update.status, update.progress) < _stage(task.status, task.progress):
                return Outcome.STALE  # an older change, arriving late: the task is past it
            written = await task_sync.apply_upstream_updates(self._pool, [(task.id, update)])
            ends_written(written, self._on_ended)
            return Outcome.APPLIED
        if task.status == "SUBMITTING":
            await task_sync.record_claim(self._pool, task.id, channel.id, upstream_id)
            log.info("upstream_task_claimed", task_id=task.id, channel=channel.name)
            return Outcome.CLAIMED
        log.warning(
            "orphan_upstream_task",
            task_id=task.id,
            task_status=task.status,
            channel=channel.name,
            upstream_task_id=upstream_id,
        )
        return Outcome.ORPHAN
