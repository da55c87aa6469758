"""Reading tasks for their owner, image-seed from the task's own channel, and image streaming."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterable
from email.utils import format_datetime
from typing import Any

import asyncpg
import msgspec
import structlog

from gateway import eventloop, metrics
from gateway.domain import Principal, Task, is_task_id
from gateway.errors import (
    BadRequest,
    NotFound,
    UpstreamError,
    UpstreamFailed,
    UpstreamTimedOut,
    UpstreamTimeout,
)
from gateway.media import files
from gateway.media.stores import MediaStore
from gateway.routing import flavours
from gateway.routing.directory import ChannelDirectory
from gateway.storage import media as media_store
from gateway.storage import tasks as task_store
from gateway.storage.media import StoredObject
from gateway.tasks.ended import EndedAnswers, Entry
from gateway.tasks.images import ImageSigner
from gateway.tasks.views import media_url, task_view
from gateway.upstream.client import MediaStream, UpstreamClient

log = structlog.get_logger(__name__)

LIST_LIMIT = 100
_PART = re.compile(r"(image|video)-[1-9][0-9]?", re.ASCII)
MAX_CACHE_S = 31_536_000
_NO_IMAGE_ACTIONS = frozenset({"SHORTEN", "DESCRIBE"})
SHARE_AT_ONCE = 100  # ended tasks read and published together (a poll batch)
MAX_WAITING_TO_SHARE = 20_000  # ended tasks noted and not yet shared; more are not noted
ANSWERS_PER_TURN = 10  # encoded before the event loop gets a turn (each some 20 us)


class TaskReader:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: ChannelDirectory,
        upstream: UpstreamClient,
        images: ImageSigner,
        store: MediaStore,
        ended: EndedAnswers,
        *,
        media_kept: bool = False,
        media_retention_s: float | None = None,
    ) -> None:
        self._pool = pool
        self._channels = channels
        self._upstream = upstream
        self._images = images
        self._store = store
        self._ended = ended
        self._media_kept = media_kept
        self._retention_s = media_retention_s
        self._to_share: list[int] = []
        self._share_wanted = asyncio.Event()

    def view(self, task: Task) -> dict[str, Any]:
        return task_view(task, self._images)

    def thumbnail(self, task: Task) -> str | None:
        """A small picture of the task's image, for the console's gallery; None if none yet."""
        if task.upstream_image_url:
            return media_url(task, self._images, "image", thumb=True)
        return None

    async def _own(self, principal: Principal, task_id: int) -> Task:
        task = await task_store.get_user_task(self._pool, task_id, principal.user_id)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        return task

    async def fetch(self, principal: Principal, task_id: int) -> bytes:
        """The task object as JSON: an ended task's from memory when it is kept there
        (``gateway.tasks.ended``), else read from the database (and then kept, if it ended)."""
        now = time.time()
        kept = self._ended.get(task_id, principal.user_id, now)
        if kept is not None:
            return kept
        task = await self._own(principal, task_id)
        entry = self._keepable(task, now)
        if entry is None:
            return msgspec.json.encode(self.view(task))
        metrics.ENDED_TASK_FETCHES.labels("database").inc()
        self._ended.put(*entry)
        return entry[3]

    def ended_now(self, task_ids: Iterable[int]) -> None:
        """Note tasks a write just ended, for ``share_ended`` to offer to every process."""
        if self._ended.shared and len(self._to_share) < MAX_WAITING_TO_SHARE:
            self._to_share.extend(task_ids)
            self._share_wanted.set()

    async def share_ended(self) -> None:
        """Run until cancelled: offer the answers of the tasks ``ended_now`` noted to every
        process's memory, so that the first fetch after an end costs no database read in any of
        them. Best effort, and never in the way of the write that ended them: that write only
        notes the ids, and past ``MAX_WAITING_TO_SHARE`` waiting (Redis stuck) more are dropped."""
        while True:
            await self._share_wanted.wait()
            task_ids = self._to_share[:SHARE_AT_ONCE]
            del self._to_share[:SHARE_AT_ONCE]
            if not self._to_share:
                self._share_wanted.clear()
            try:
                tasks = await task_store.ended_tasks(self._pool, task_ids)
                now = time.time()
                entries = [
                    self._keepable(task, now)
                    async for task in eventloop.in_turns(tasks, ANSWERS_PER_TURN)
                ]
                await self._ended.share([entry for entry in entries if entry is not None])
            except (asyncpg.PostgresError, OSError) as exc:  # each process reads them when asked
                log.warning("ended_answers_not_shared", error=str(exc))
            except Exception:  # a bug must not stop the sharing for good: log it, go on
                log.exception("ended_answers_not_shared")

    def _keepable(self, task: Task, now_s: float) -> Entry | None:
        """The task's answer as it may be kept in memory, with the moment it stops being good;
        None when it may change: the task has not ended, or the copy of its media into the
        store is still to be made (it adds parts to the answer)."""
        if task.status not in task_store.ENDED_STATUSES or (
            self._media_kept and task.media_pending
        ):
            return None
        good_until = self._images.same_urls_until(now_s)
        if self._retention_s is not None and task.finish_time_ms is not None:
            good_until = min(good_until, task.finish_time_ms / 1000 + self._retention_s)
        return task.id, task.user_id, good_until, msgspec.json.encode(self.view(task))

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
        *,
        thumb: bool = False,
        byte_range: str | None = None,
        if_none_match: str | None = None,
    ) -> MediaStream:
        """A task's image, or a ``part`` of its result (``gateway.tasks.images``), or its
        thumbnail, if the signature holds: the stored copy when there is one, else streamed
        from the upstream. ``byte_range`` is a client's ``Range``."""
        if not is_task_id(task_id):
            raise NotFound("image not found")
        if part is not None and _PART.fullmatch(part) is None:
            raise NotFound("image not found")
        if not self._images.verify(int(task_id), exp, signature, part=part):
            raise NotFound("image link invalid or expired")
        name = part or "image"
        stored = await media_store.find_object(
            self._pool, int(task_id), f"{name}-thumb" if thumb else name
        )
        if stored is not None:
            kept = await self._stored(stored, exp, byte_range, if_none_match)
            if kept is not None:
                return kept
        task = await task_store.get_task(self._pool, int(task_id))
        url = _upstream_url(task, name, thumb) if task is not None else None
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

    async def _stored(
        self, stored: StoredObject, exp: int, byte_range: str | None, if_none_match: str | None
    ) -> MediaStream | None:
        """A stored object, whole or the range asked, cacheable until its link expires: a
        stored object never changes. None when the store cannot give it (the caller streams
        from the upstream instead): its first bytes are read before anything is answered."""
        etag = f'"{stored.sha256}"'
        max_age = max(0, min(MAX_CACHE_S, exp - int(time.time())))
        headers = {
            "ETag": etag,
            "Last-Modified": format_datetime(stored.stored_at, usegmt=True),
            "Cache-Control": f"public, max-age={max_age}, immutable",
            "Accept-Ranges": "bytes",
        }
        if if_none_match is not None and (etag in if_none_match or if_none_match.strip() == "*"):
            return MediaStream(304, stored.content_type, headers, _nothing())
        size = stored.size_bytes
        try:
            wanted = files.byte_range(byte_range, size)
        except ValueError:
            return MediaStream(
                416, stored.content_type, {"Content-Range": f"bytes */{size}"}, _nothing()
            )
        first, last = wanted or (0, size - 1)
        headers["Content-Length"] = str(last - first + 1)
        status = 200
        if wanted is not None:
            status = 206
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        if not size:
            return MediaStream(status, stored.content_type, headers, _nothing())
        chunks = self._store.read(stored.store_key, first, last)
        try:
            head = await anext(chunks)
        except Exception as exc:  # gone from the store, or the store is down
            log.warning("media_read_failed", key=stored.store_key, error=str(exc))
            return None
        return MediaStream(status, stored.content_type, headers, _after(head, chunks))


async def _after(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield head
    async for chunk in rest:
        yield chunk


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


def _upstream_url(task: Task, name: str, thumb: bool) -> str | None:
    """Where the upstream has a part of a task's result, or its thumbnail (or, for an image
    with none there, the image itself)."""
    if name == "image":
        return task.upstream_image_url
    kind, _, number = name.partition("-")
    items = task.upstream_media.get(f"{kind}s") or []
    if not 1 <= int(number) <= len(items):
        return None
    item = items[int(number) - 1]
    if thumb and item.get("thumbnail"):
        url: str | None = item["thumbnail"]
        return url
    return None if thumb and kind == "video" else item.get("url")
