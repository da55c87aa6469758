"""The dependency container: every service one process runs (``Services``), built and torn down
by ``build_services``, and handed to routes through the app's state."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from gateway import activity, metrics
from gateway.auth.authenticator import Authenticator
from gateway.auth.limits import RateLimits
from gateway.billing.holds import Billing
from gateway.config import Settings
from gateway.console.sessions import ConsoleSessions, SignInLimits
from gateway.errors import StartupError
from gateway.media.copier import MediaCopier
from gateway.media.keeping import apply_retention, export_media_totals, forget_old_copy_jobs
from gateway.media.stores import MediaStore, S3Store, open_store
from gateway.routing.cooldowns import Cooldowns
from gateway.routing.directory import ChannelDirectory
from gateway.routing.probes import ChannelProber
from gateway.routing.slots import ChannelSlots
from gateway.sealing import SecretBox, key_material, secret_box
from gateway.storage.archive import archive_ended_tasks
from gateway.storage.database import create_pool
from gateway.storage.redis import create_redis
from gateway.storage.redis_keys import RedisKeys
from gateway.storage.servers import Servers
from gateway.tasks.callbacks import Callbacks
from gateway.tasks.cancel import TaskCanceller
from gateway.tasks.ended import EndedAnswers
from gateway.tasks.idempotency import Idempotency
from gateway.tasks.images import ImageSigner
from gateway.tasks.leader import Job, Leader
from gateway.tasks.poller import Poller, export_backlog
from gateway.tasks.reader import TaskReader
from gateway.tasks.submit import Submitter
from gateway.tasks.sweeper import HoldSweeper
from gateway.tasks.webhooks import HookGuard, WebhookDeliverer
from gateway.upstream.client import UpstreamClient


@dataclass(frozen=True, slots=True)
class Services:
    pool: asyncpg.Pool
    redis: aioredis.Redis
    upstream: UpstreamClient
    auth: Authenticator
    billing: Billing
    idempotency: Idempotency
    channels: ChannelDirectory
    box: SecretBox  # opens and seals channel secrets
    cooldowns: Cooldowns
    submitter: Submitter
    tasks: TaskReader
    callbacks: Callbacks
    cancels: TaskCanceller
    webhooks: WebhookDeliverer
    poller: Poller
    sweeper: HoldSweeper
    prober: ChannelProber
    media: MediaStore
    copier: MediaCopier
    sessions: ConsoleSessions
    sign_ins: SignInLimits
    keys: RedisKeys
    settings: Settings


PURGE_KEYS_EVERY_S = 60.0
MEDIA_STATS_EVERY_S = 60.0
MAX_PRESIGNED_S = 7 * 86_400
MEDIA_RETENTION_EVERY_S = 600.0
PURGE_HOLDS_EVERY_S = 600.0
ARCHIVE_TASKS_EVERY_S = 600.0


def load_secret_key(settings: Settings) -> bytes:
    """The key that signs image URLs: configured, or generated once and kept in the data dir."""
    return key_material(settings.relay.secret_key, settings.data_dir / "secret.key")


def public_base_url(settings: Settings) -> str:
    server = settings.server
    return server.public_base_url or f"http://{server.host}:{server.port}"


def media_link(settings: Settings, store: MediaStore) -> Callable[[str], str] | None:
    """Where stored media are linked, if not at the gateway (``GATEWAY_MEDIA__PUBLIC_BASE_URL``):
    ``presigned``: presigned URLs of the S3 store, living as long as the gateway's own; else a
    base URL (a CDN) the object keys go under."""
    base = settings.media.public_base_url
    if base is None:
        return None
    if base == "presigned":
        if not isinstance(store, S3Store):
            raise StartupError("GATEWAY_MEDIA__PUBLIC_BASE_URL=presigned needs an S3 bucket")
        ttl_s = settings.relay.image_url_ttl_s
        if ttl_s > MAX_PRESIGNED_S:
            raise StartupError(
                f"presigned links live at most {MAX_PRESIGNED_S} s (S3's limit), and"
                f" GATEWAY_RELAY__IMAGE_URL_TTL_S is {ttl_s}"
            )
        return lambda key: store.presigned_url(key, ttl_s)
    prefix = base.rstrip("/")
    return lambda key: f"{prefix}/{key}"


@contextlib.asynccontextmanager
async def build_services(
    settings: Settings,
    servers: Servers,
    *,
    run_background: bool = True,
    rate_clock_ms: Callable[[], int] | None = None,
) -> AsyncIterator[Services]:
    """Every service of one process; background loops run while the block is open.
    ``rate_clock_ms``: the clock of the per-minute rate windows (None: the Redis server's)."""
    pool = await create_pool(servers.database_url, settings.database)
    hold_pool = await create_pool(
        servers.database_url,
        settings.database.model_copy(
            update={
                "pool_min_size": 1,
                "pool_max_size": max(2, settings.database.pool_max_size // 2),
            }
        ),
        synchronous_commit=False,
    )
    redis = create_redis(servers.redis_url)
    upstream = UpstreamClient(settings.upstream)
    await upstream.start()
    box = secret_box(settings)
    channels = ChannelDirectory(pool, box)
    keys = RedisKeys(settings.redis.key_prefix)
    cooldowns = Cooldowns(
        redis,
        keys,
        settings.upstream.cooldown_s,
        failures_to_cool=settings.upstream.failures_to_cool,
        failure_streak_ttl_s=settings.upstream.failure_streak_ttl_s,
    )
    limits = RateLimits(redis, keys, clock_ms=rate_clock_ms)
    auth = Authenticator(pool, redis, keys, limits, settings.relay.auth_cache_ttl_s)
    billing = Billing(
        pool,
        hold_pool,
        settings.relay.hold_deadline_s,
        refresh_s=settings.relay.price_cache_s,
        finished_holds_keep_s=settings.relay.finished_holds_keep_days * 86_400,
    )
    idempotency = Idempotency(pool)
    media = await open_store(settings.media, settings.data_dir)
    images = ImageSigner(
        load_secret_key(settings),
        public_base_url(settings),
        settings.relay.image_url_ttl_s,
        media_link=media_link(settings, media),
    )
    relay = settings.relay
    webhooks = WebhookDeliverer(
        pool,
        images,
        allow_private=relay.webhook_allow_private,
        timeout_s=relay.webhook_timeout_s,
        retry_for_s=relay.webhook_retry_for_s,
        backoff_s=relay.webhook_backoff_s,
        poll_s=relay.webhook_poll_s,
    )
    await webhooks.start()
    ended = EndedAnswers(
        int(relay.ended_tasks_cache_mb * 1_000_000), redis, keys.ended_answers_channel
    )
    reader = TaskReader(
        pool,
        channels,
        upstream,
        images,
        media,
        ended,
        media_kept=settings.media.keep,
        media_retention_s=(
            settings.media.retention_days * 86_400 if settings.media.retention_days else None
        ),
    )
    services = Services(
        pool=pool,
        redis=redis,
        upstream=upstream,
        auth=auth,
        billing=billing,
        idempotency=idempotency,
        channels=channels,
        box=box,
        cooldowns=cooldowns,
        submitter=Submitter(
            pool,
            auth,
            billing,
            channels,
            cooldowns,
            upstream,
            ChannelSlots(pool),
            max_attempts=settings.upstream.max_attempts,
            queued_passthrough=settings.relay.queued_passthrough,
            callback_base_url=settings.upstream.callback_base_url,
            hooks=HookGuard(settings.relay.webhook_allow_private),
            rng=random.Random(settings.upstream.routing_seed),  # noqa: S311 - not security
        ),
        tasks=reader,
        callbacks=Callbacks(pool, channels, reader.ended_now),
        cancels=TaskCanceller(pool, channels, upstream),
        webhooks=webhooks,
        poller=Poller(
            pool,
            channels,
            upstream,
            cooldowns,
            batch_size=settings.relay.poll_batch_size,
            task_timeout_s=settings.relay.task_timeout_s,
            task_timeouts_s=settings.relay.task_timeouts_s,
            young_s=settings.relay.poll_young_s,
            waiting_every=settings.relay.poll_waiting_every,
            forgotten_after_polls=settings.relay.forgotten_after_polls,
            max_tasks_per_round=settings.relay.poll_max_tasks,
            on_ended=reader.ended_now,
            interval_s=settings.relay.poll_interval_s,
        ),
        sweeper=HoldSweeper(pool, billing, channels, upstream),
        prober=ChannelProber(
            channels,
            cooldowns,
            upstream,
            interval_s=settings.upstream.probe_interval_s,
            timeout_s=settings.upstream.probe_timeout_s,
        ),
        media=media,
        copier=MediaCopier(
            pool, media, upstream, channels, settings.media, on_final=reader.ended_now
        ),
        sessions=ConsoleSessions(
            redis, keys, settings.console.session_idle_s, settings.console.session_max_s
        ),
        sign_ins=SignInLimits(redis, keys, settings.console.sign_in_attempts),
        keys=keys,
        settings=settings,
    )
    background: list[asyncio.Task[None]] = []
    if run_background:
        background = [
            asyncio.create_task(auth.listen_for_revocations(), name="revocations"),
            asyncio.create_task(ended.listen(), name="ended-answers"),
            asyncio.create_task(reader.share_ended(), name="share-ended-answers"),
            asyncio.create_task(_leader(services, servers.database_url).run(), name="leader"),
            asyncio.create_task(webhooks.run(), name="webhooks"),
            asyncio.create_task(activity.run(redis, keys), name="activity"),
            asyncio.create_task(
                metrics.watch_process(lambda: (pool.get_size(), pool.get_idle_size()), redis.ping),
                name="process-metrics",
            ),
        ]
    try:
        yield services
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await webhooks.close()
        await media.close()
        await upstream.close()
        await redis.aclose()
        await hold_pool.close()
        await pool.close()


async def _archive(services: Services) -> int:
    """Move the ended tasks past ``archive_tasks_after_days`` to the archive."""
    days = services.settings.relay.archive_tasks_after_days or 0.0
    return await archive_ended_tasks(services.pool, int((time.time() - days * 86_400) * 1000))


def _leader(services: Services, database_url: str) -> Leader:
    """The jobs one process at a time runs, each at its own pace (``gateway.tasks.leader``)."""
    every_s = services.settings.relay.poll_interval_s
    media = services.settings.media
    return Leader(
        database_url,
        [
            Job("sync", every_s, services.poller.run_once, from_start=True),
            Job("sweep-holds", every_s, services.sweeper.sweep),
            Job("backlog", every_s, lambda: export_backlog(services.pool, services.channels)),
            Job("probe", services.prober.tick_s, services.prober.run_once),
            Job("purge-keys", PURGE_KEYS_EVERY_S, services.idempotency.purge_expired),
            Job("purge-holds", PURGE_HOLDS_EVERY_S, services.billing.forget_finished_holds),
            *(
                [Job("archive-tasks", ARCHIVE_TASKS_EVERY_S, lambda: _archive(services))]
                if services.settings.relay.archive_tasks_after_days is not None
                else []
            ),
            Job("media-stats", MEDIA_STATS_EVERY_S, lambda: export_media_totals(services.pool)),
            Job(
                "media-retention",
                MEDIA_RETENTION_EVERY_S,
                lambda: apply_retention(services.pool, services.media, media),
            ),
            Job(
                "media-jobs-purge",
                MEDIA_RETENTION_EVERY_S,
                lambda: forget_old_copy_jobs(services.pool, media),
            ),
            *(
                [Job("media-copy", media.copy_every_s, services.copier.run_once)]
                if media.keep
                else []
            ),
        ],
        retry_s=every_s,
    )
