"""Copying results into the media store: once per SUCCESS task, in the background, with retries.

A task's copy job is queued in the statement that records its SUCCESS (``storage.task_sync``), so
no restart loses it. The leader claims due jobs a few at a time for a while (``claim_s``): a
process that dies mid-copy lets its claim lapse and the job is taken again, and parts already
stored are not copied twice. A job copies every part of the result:

    image            the task's image (a video task's first video)
    image-<n>        the single images of a grid: the upstream's, or cut from a 2x2 grid here
    video-<n>        each video, and its thumbnail video-<n>-thumb where the upstream has one
    <image part>-thumb   a small WebP of each image, made here

What an upstream offers is the upstream's word and is checked: a URL that is not http(s), that
leads to a private address (``gateway.public_addresses``, applied by the upstream client), more
bytes than ``max_bytes``, or bytes that are not the kind of media the part is, is refused: the
job ends FAILED at once and the task's media keep streaming from the upstream. Other failures
(unreachable, an HTTP error, the store) are tried again after ``retry_s``, doubled per attempt,
up to ``max_attempts``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import structlog

from gateway import metrics
from gateway.config import MediaSettings
from gateway.domain import Channel, Task
from gateway.errors import PrivateAddressError, UpstreamError, UpstreamHttpError
from gateway.media import files
from gateway.media.stores import MediaStore
from gateway.routing.directory import ChannelDirectory
from gateway.storage import media as media_store
from gateway.storage import tasks as task_store
from gateway.storage.media import StoredObject
from gateway.tasks.ended import OnEnded
from gateway.upstream.client import UpstreamClient

log = structlog.get_logger(__name__)
_T = TypeVar("_T")

MAX_RETRY_S = 3600.0
_GRID_BUTTON = "MJ::JOB::upsample::"


class Refused(Exception):
    """A result the store will not keep; ``reason`` is a metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class Unfinished(Exception):
    """A copy that may work later; ``reason`` is a metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Bytes:
    data: bytes
    content_type: str
    sha256: str

    @classmethod
    async def of(cls, data: bytes, content_type: str) -> _Bytes:
        """Hashed in a worker thread: a video is tens of megabytes."""
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        return cls(data, content_type, digest)


@dataclass(frozen=True, slots=True)
class _Part:
    name: str
    url: str
    kinds: frozenset[str]  # the content types it may be


_IMAGES = files.IMAGE_TYPES
_ANY = files.IMAGE_TYPES | files.VIDEO_TYPES


def result_parts(task: Task) -> list[_Part]:
    """What the upstream offers of a task's result, part by part."""
    parts = []
    if task.upstream_image_url:
        parts.append(_Part("image", task.upstream_image_url, _ANY))
    for number, item in enumerate(task.upstream_media.get("images", []), 1):
        parts.append(_Part(f"image-{number}", item["url"], _IMAGES))
    for number, item in enumerate(task.upstream_media.get("videos", []), 1):
        parts.append(_Part(f"video-{number}", item["url"], files.VIDEO_TYPES))
        if item.get("thumbnail"):
            parts.append(_Part(f"video-{number}-thumb", item["thumbnail"], _IMAGES))
    return parts


def is_grid(task: Task) -> bool:
    return any(_GRID_BUTTON in str(button.get("customId")) for button in task.buttons)


def store_key(task_id: int, part: str, sha256: str, content_type: str) -> str:
    """Where an object lives: by task, part and content, so a retried put lands on itself."""
    return f"tasks/{task_id}/{part}-{sha256[:16]}.{files.EXTENSIONS[content_type]}"


class MediaCopier:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: MediaStore,
        upstream: UpstreamClient,
        channels: ChannelDirectory,
        settings: MediaSettings,
        on_final: OnEnded | None = None,
    ) -> None:
        """``on_final``: called with the id of a task whose copy is made or given up, so that
        its answer changes no more."""
        self._pool = pool
        self._store = store
        self._upstream = upstream
        self._channels = channels
        self._settings = settings
        self._decoding = asyncio.Semaphore(1)
        self._on_final = on_final

    async def run_once(self) -> int:
        """Copy the due jobs, up to ``copies_at_once`` at a time; how many were taken."""
        settings = self._settings
        claimed = await media_store.claim_copies(
            self._pool, settings.copies_at_once, settings.claim_s, settings.max_attempts
        )
        await asyncio.gather(*(self._run(job) for job in claimed))
        return len(claimed)

    async def _run(self, job: media_store.Claimed) -> None:
        try:
            await self.copy(job.task_id)
        except Refused as refused:
            metrics.MEDIA_COPY_FAILURES.labels(refused.reason).inc()
            log.warning("media_copy_refused", task_id=job.task_id, error=str(refused))
            await media_store.fail_copy(self._pool, job.task_id, str(refused))
            self._final(job.task_id)
        except Exception as exc:  # Unfinished, or a bug: logged, and tried again later
            reason = exc.reason if isinstance(exc, Unfinished) else "error"
            if not isinstance(exc, Unfinished):
                log.exception("media_copy_crashed", task_id=job.task_id)
            metrics.MEDIA_COPY_FAILURES.labels(reason).inc()
            if job.attempt >= self._settings.max_attempts:
                log.warning("media_copy_given_up", task_id=job.task_id, error=str(exc))
                await media_store.fail_copy(self._pool, job.task_id, str(exc))
                self._final(job.task_id)
            else:
                delay_s = min(MAX_RETRY_S, self._settings.retry_s * 2 ** (job.attempt - 1))
                log.info("media_copy_later", task_id=job.task_id, error=str(exc), in_s=delay_s)
                await media_store.retry_copy(self._pool, job.task_id, str(exc), delay_s)
        else:
            lag_s = await media_store.finish_copy(self._pool, job.task_id)
            if lag_s is not None:
                metrics.MEDIA_COPY_LAG.observe(lag_s)
            self._final(job.task_id)

    def _final(self, task_id: int) -> None:
        if self._on_final is not None:
            self._on_final([task_id])

    async def copy(self, task_id: int) -> None:
        """Store every part of a task's result not stored yet; a picture that cannot be decoded
        (broken, or claiming more than ``files.MAX_PIXELS``) is refused as mistyped."""
        task = await task_store.get_task(self._pool, task_id)
        if task is None or task.status != "SUCCESS" or task.channel_id is None:
            raise Refused("no_result", f"task {task_id} has no result to copy")
        channel = await self._channels.get(task.channel_id)
        if channel is None:
            raise Unfinished("unreachable", f"task {task_id}'s channel is gone")
        stored = await media_store.task_objects(self._pool, task_id)
        fetched: dict[str, _Bytes] = {}  # by URL: one download each
        for part in result_parts(task):
            if part.name in stored:
                continue
            if part.url not in fetched:
                fetched[part.url] = await self._download(part, channel)
            found = fetched[part.url]
            if found.content_type not in part.kinds:
                raise Refused("mistyped", f"{part.name} is {found.content_type}")
            stored[part.name] = await self._put(task_id, part.name, found)
        try:
            await self._derive(task, stored, fetched)
        except files.UnfitImage as unfit:
            raise Refused("mistyped", str(unfit)) from unfit

    async def _derive(
        self, task: Task, stored: dict[str, StoredObject], fetched: dict[str, _Bytes]
    ) -> None:
        """The single images of a 2x2 grid the upstream did not split, and every image's
        thumbnail."""
        image = stored.get("image")
        tiles = [f"image-{number}" for number in range(1, 5)]
        missing = [part for part in tiles if part not in stored]
        if (
            image is not None
            and is_grid(task)
            and missing
            and not task.upstream_media.get("images")
        ):
            data = await self._bytes(image, fetched)
            for part, tile in zip(tiles, await self._pillow(files.split_grid, data), strict=True):
                if part in missing:
                    png = await _Bytes.of(tile, "image/png")
                    stored[part] = await self._put(task.id, part, png)
        for name, found in list(stored.items()):
            thumb = f"{name}-thumb"
            is_image = found.content_type in _IMAGES and not name.endswith("-thumb")
            if is_image and thumb not in stored:
                data = await self._bytes(found, fetched)
                small = await _Bytes.of(await self._pillow(files.thumbnail, data), "image/webp")
                stored[thumb] = await self._put(task.id, thumb, small)

    async def _pillow(self, work: Callable[[bytes], _T], data: bytes) -> _T:
        """Pillow's work in a worker thread, one picture at a time in this process: decoding
        takes some 4 bytes a pixel."""
        async with self._decoding:
            return await asyncio.to_thread(work, data)

    async def _bytes(self, found: StoredObject, fetched: dict[str, _Bytes]) -> bytes:
        for candidate in fetched.values():
            if candidate.sha256 == found.sha256:
                return candidate.data
        try:
            chunks = self._store.read(found.store_key, 0, found.size_bytes - 1)
            return b"".join([chunk async for chunk in chunks])
        except Exception as exc:
            raise Unfinished("store", f"cannot read {found.store_key}: {exc}") from exc

    async def _put(self, task_id: int, part: str, found: _Bytes) -> StoredObject:
        key = store_key(task_id, part, found.sha256, found.content_type)
        try:
            await self._store.put(key, found.data, found.content_type)
        except Exception as exc:
            raise Unfinished("store", f"cannot store {key}: {exc}") from exc
        stored = StoredObject(
            task_id,
            part,
            key,
            len(found.data),
            found.content_type,
            found.sha256,
            datetime.now(UTC),
        )
        await media_store.record_object(self._pool, stored)
        return stored

    async def _download(self, part: _Part, channel: Channel) -> _Bytes:
        """The bytes at ``part.url`` and their sniffed type, at most ``max_bytes`` of them."""
        if not part.url.lower().startswith(("http://", "https://")):
            raise Refused("not_http", f"{part.name} is not at an http(s) URL")
        limit = self._settings.max_bytes
        try:
            media = await self._upstream.stream_media(part.url, channel)
        except UpstreamHttpError as exc:
            raise Unfinished("http_status", f"{part.name}: {exc}") from exc
        except UpstreamError as exc:
            if _private(exc):
                raise Refused("private_address", f"{part.name}: {exc}") from exc
            raise Unfinished("unreachable", f"{part.name}: {exc}") from exc
        chunks: list[bytes] = []
        size = 0
        try:
            if media.status != 200:
                raise Unfinished("http_status", f"{part.name}: HTTP {media.status}")
            declared = media.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise Refused("too_large", f"{part.name} is {declared} bytes, over {limit}")
            async for chunk in media.chunks:
                size += len(chunk)
                if size > limit:
                    raise Refused("too_large", f"{part.name} is over {limit} bytes")
                chunks.append(chunk)
        except UpstreamError as exc:
            raise Unfinished("unreachable", f"{part.name}: {exc}") from exc
        finally:
            await media.chunks.aclose()  # type: ignore[attr-defined]
        data = b"".join(chunks)
        content_type = files.sniff(data)
        if content_type is None:
            raise Refused("mistyped", f"{part.name} is neither an image nor a video")
        declared_kind = media.content_type.split("/", 1)[0]
        if declared_kind in ("image", "video") and declared_kind != content_type.split("/")[0]:
            raise Refused("mistyped", f"{part.name} says {media.content_type}, is {content_type}")
        return await _Bytes.of(data, content_type)


def _private(exc: BaseException) -> bool:
    """Whether the public-address guard refused the connection, somewhere in the causes."""
    return any(isinstance(cause, PrivateAddressError) for cause in _causes(exc))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__, getattr(current, "os_error", None)]
