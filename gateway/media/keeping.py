"""Looking after the media store: its size in the metrics, retention, and finding what went
missing so it is copied again (``gateway media``)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import structlog

from gateway import metrics
from gateway.config import MediaSettings
from gateway.media.stores import MediaStore
from gateway.storage import media as media_store
from gateway.storage.media import StoredObject, Totals

log = structlog.get_logger(__name__)

PAGE = 500
DAY_S = 86_400.0


async def export_media_totals(pool: asyncpg.Pool) -> Totals:
    """What the store holds, also set as ``gateway_media_objects`` and ``gateway_media_bytes``."""
    found = await media_store.totals(pool)
    metrics.MEDIA_OBJECTS.set(found.objects)
    metrics.MEDIA_BYTES.set(found.bytes)
    return found


async def apply_retention(pool: asyncpg.Pool, store: MediaStore, settings: MediaSettings) -> int:
    """Delete stored media older than ``retention_days`` (none when unset); their tasks'
    records note when. How many objects went."""
    if settings.retention_days is None:
        return 0
    deleted = 0
    while batch := await media_store.expired_objects(pool, settings.retention_days * DAY_S, PAGE):
        await media_store.forget_objects(pool, batch)  # first: no reader is sent to them
        await media_store.note_media_deleted(pool, sorted({s.task_id for s in batch}))
        for stored in batch:
            await store.delete(stored.store_key)
        deleted += len(batch)
    if deleted:
        log.info("media_retention", deleted=deleted, older_than_days=settings.retention_days)
    return deleted


async def forget_old_copy_jobs(pool: asyncpg.Pool, settings: MediaSettings) -> int:
    """Keep the copy queue from growing forever: jobs done a day ago go (and, where media are
    not kept, the jobs SUCCESS queued anyway). How many went."""
    forgotten = 0
    while True:
        batch = await media_store.forget_copy_jobs(
            pool, DAY_S, pending_too=not settings.keep, limit=PAGE
        )
        forgotten += batch
        if batch < PAGE:
            return forgotten


@dataclass(frozen=True, slots=True)
class Refetch:
    checked: int  # stored objects looked for in the store
    missing: int  # of them, not there
    queued: int  # tasks whose results are to be copied again


async def refetch_missing(pool: asyncpg.Pool, store: MediaStore) -> Refetch:
    """Look for every stored object in the store (one request each: run it off-peak); forget
    those gone and copy their tasks' results again, with the tasks whose copies failed, where
    the upstream still has them (retention's deletions are left deleted)."""
    checked = 0
    missing: list[StoredObject] = []
    after = (0, "")
    while page := await media_store.objects_page(pool, after, PAGE):
        for stored in page:
            if not await store.exists(stored.store_key):
                missing.append(stored)
        checked += len(page)
        after = (page[-1].task_id, page[-1].part)
    if missing:
        await media_store.forget_objects(pool, missing)
    task_ids = {stored.task_id for stored in missing}
    task_ids.update(await media_store.failed_copies(pool, 1_000_000))
    queued = await media_store.requeue(pool, sorted(task_ids))
    return Refetch(checked, len(missing), queued)
