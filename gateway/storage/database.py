"""The asyncpg connection pool and the transaction helper every repository uses."""

from __future__ import annotations

import asyncpg

from gateway.config import DatabaseSettings


async def create_pool(url: str, settings: DatabaseSettings) -> asyncpg.Pool:
    """A pool of ``pool_min_size``..``pool_max_size`` connections; statements time out."""
    return await asyncpg.create_pool(
        url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        command_timeout=settings.command_timeout_s,
    )
