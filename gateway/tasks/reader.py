"""Reading tasks for their owner, image-seed from the task's own channel, and image streaming."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from gateway.domain import Principal, Task, is_task_id
from gateway.errors import (
    BadRequest,
    NotFound,
    UpstreamError,
    UpstreamFailed,
    UpstreamTimedOut,
    UpstreamTimeout,
)
from gateway.routing import flavours
from gateway.routing.directory import ChannelDirectory
from gateway.storage import tasks as task_store
from gateway.tasks.images import ImageSigner
from gateway.tasks.views import task_view
from gateway.upstream.client import MediaStream, UpstreamClient

LIST_LIMIT = 100
_PART = re.compile(r"(image|video)-([1-9][0-9]?)(-thumb)?", re.ASCII)
_NO_IMAGE_ACTIONS = frozenset({"SHORTEN", "DESCRIBE"})


class TaskReader:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: ChannelDirectory,
        upstream: UpstreamClient,
        images: ImageSigner,
    ) -> None:
        self._pool = pool
        self._channels = channels
        self._upstream = upstream
        self._images = images

    def view(self, task: Task) -> dict[str, Any]:
        return task_view(task, self._images)

    async def _own(self, principal: Principal, task_id: int) -> Task:
        task = await task_store.get_user_task(self._pool, task_id, principal.user_id)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        return task

    async def fetch(self, principal: Principal, task_id: int) -> dict[str, Any]:
        return self.view(await self._own(principal, task_id))

    async def recent(self, principal: Principal) -> list[dict[str, Any]]:
        tasks = await task_store.list_recent(self._pool, principal.user_id, LIST_LIMIT)
        return [self.view(task) for task in tasks]

    async def by_ids(self, principal: Principal, ids: list[str]) -> list[dict[str, Any]]:
        """The caller's tasks among ``ids``, in the order asked, each once; others left out."""
        wanted = list(dict.fromkeys(int(i) for i in ids if is_task_id(i)))
        found = {
            t.id: t for t in await task_store.list_by_ids(self._pool, principal.user_id, wanted)
        }
        return [self.view(found[i]) for i in wanted if i in found]

    async def image_seed(self, principal: Principal, task_id: int) -> str:
        """The seed of the task's image, asked of its channel; 400/21 for a task that made no
        image (a shorten or a describe answers with text) or has none yet."""
        task = await self._own(principal, task_id)
        if task.action in _NO_IMAGE_ACTIONS:
            raise BadRequest(f"task {task_id} is a {task.action}: it makes no image, so no seed")
        if task.upstream_image_url is None:
            raise BadRequest(f"task {task_id} has no image yet, so no seed")
        channel = await self._channels.get(task.channel_id) if task.channel_id else None
        if channel is None or task.upstream_task_id is None:
            raise BadRequest(f"task {task_id} has no image seed")
        if not flavours.offers(channel.flavour, "image_seed"):
            raise BadRequest(f"task {task_id}'s channel ({channel.flavour}) gives no image seeds")
        try:
            answer = await self._upstream.image_seed(channel, task.upstream_task_id)
        except UpstreamTimedOut:
            raise UpstreamTimeout() from None
        except UpstreamError:
            raise UpstreamFailed() from None
        if answer.code != 1 or answer.result in (None, ""):
            raise BadRequest(answer.description or f"task {task_id} has no image seed")
        return str(answer.result)

    async def open_media(
        self,
        task_id: str,
        exp: int,
        signature: str,
        part: str | None = None,
        byte_range: str | None = None,
    ) -> MediaStream:
        """A task's image, or a ``part`` of its result (``gateway.tasks.images``), streamed
        from its upstream if the signature holds; ``byte_range`` is a client's ``Range``."""
        if not is_task_id(task_id):
            raise NotFound("image not found")
        if not self._images.verify(int(task_id), exp, signature, part=part):
            raise NotFound("image link invalid or expired")
        task = await task_store.get_task(self._pool, int(task_id))
        url = _media_url(task, part) if task is not None else None
        if task is None or url is None or task.channel_id is None:
            raise NotFound("image not found")
        channel = await self._channels.get(task.channel_id)
        if channel is None:
            raise NotFound("image not found")
        try:
            return await self._upstream.stream_media(url, channel, byte_range)
        except UpstreamTimedOut:
            raise UpstreamTimeout() from None
        except UpstreamError:
            raise UpstreamFailed("could not fetch the image upstream") from None


def _media_url(task: Task, part: str | None) -> str | None:
    """The upstream URL of a task's image (``part`` None) or of one ``part`` of its result."""
    if part is None:
        return task.upstream_image_url
    match = _PART.fullmatch(part)
    if match is None:
        return None
    kind, number, thumb = match.groups()
    items = task.upstream_media.get(f"{kind}s") or []
    if not 1 <= int(number) <= len(items):
        return None
    url: str | None = items[int(number) - 1].get("thumbnail" if thumb else "url")
    return url
