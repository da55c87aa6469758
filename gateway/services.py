"""The services one process runs, built once in the app's lifespan and handed to routes."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from gateway.auth.service import Authenticator
from gateway.billing.idempotency import Idempotency
from gateway.billing.service import Billing
from gateway.config import Settings
from gateway.errors import MigrationError
from gateway.routing.cooldowns import Cooldowns
from gateway.routing.directory import ChannelDirectory
from gateway.sealing import SecretBox
from gateway.storage.migrations import pending_migrations
from gateway.tasks.callbacks import Callbacks
from gateway.tasks.cancel import TaskCanceller
from gateway.tasks.poller import Poller
from gateway.tasks.service import TaskReader
from gateway.tasks.submit import Submitter
from gateway.tasks.webhooks import WebhookDeliverer
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
    settings: Settings

    async def readiness(self) -> dict[str, bool]:
        """Whether PostgreSQL answers with a current schema, and Redis answers."""
        checks = {"database": False, "migrations": False, "redis": False}
        try:
            async with self.pool.acquire() as conn:
                checks["database"] = True
                checks["migrations"] = not await pending_migrations(
                    conn, self.settings.migrations_dir
                )
        except (OSError, asyncpg.PostgresError, MigrationError):
            pass
        with contextlib.suppress(OSError, aioredis.RedisError):
            checks["redis"] = bool(await self.redis.ping())
        return checks
