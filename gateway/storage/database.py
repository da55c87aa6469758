"""The asyncpg connection pools and their session settings."""

from __future__ import annotations

import asyncpg

from gateway.config import DatabaseSettings


async def _keep_session(_: asyncpg.Connection) -> None:
    """Pool connections carry no session state (no LISTEN, advisory locks or SET), so the
    default reset query on every release is a wasted round trip; asyncpg still rolls back a
    transaction left open."""


DATABASE_UNREACHABLE: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, no route
    TimeoutError,  # connect, acquire or statement timeout
    asyncpg.PostgresConnectionError,  # lost or never made
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.TooManyConnectionsError,
)
"""What the database's absence looks like to a caller: such a request fails closed (503/23)."""


async def create_pool(
    url: str, settings: DatabaseSettings, *, synchronous_commit: bool = True
) -> asyncpg.Pool:
    """A pool of ``pool_min_size``..``pool_max_size`` connections; statements time out.

    ``synchronous_commit=False`` makes commits return before their WAL reaches the disk: for
    writes whose loss in a database crash is harmless (see ``gateway.billing``).
    """
    return await asyncpg.create_pool(
        url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        command_timeout=settings.command_timeout_s,
        reset=_keep_session,
        server_settings={} if synchronous_commit else {"synchronous_commit": "off"},
    )
