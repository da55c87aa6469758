"""Channels: the upstream instances the gateway forwards to."""

from __future__ import annotations

import secrets

import asyncpg

from gateway.domain import Channel

_COLUMNS = """
    id, name, base_url, secret, weight, priority, modes, actions, bot_types, enabled,
    callback_token, max_in_flight
"""


def _channel(row: asyncpg.Record) -> Channel:
    return Channel(
        id=row["id"],
        name=row["name"],
        base_url=row["base_url"],
        secret=row["secret"],
        weight=row["weight"],
        priority=row["priority"],
        modes=frozenset(row["modes"]),
        actions=frozenset(row["actions"]) if row["actions"] is not None else None,
        bot_types=frozenset(row["bot_types"]),
        enabled=row["enabled"],
        callback_token=row["callback_token"],
        max_in_flight=row["max_in_flight"],
    )


async def list_channels(pool: asyncpg.Pool) -> list[Channel]:
    rows = await pool.fetch(f"SELECT {_COLUMNS} FROM channels ORDER BY id")
    return [_channel(row) for row in rows]


async def create_channel(
    pool: asyncpg.Pool,
    name: str,
    base_url: str,
    secret: str | None,
    *,
    weight: int = 1,
    priority: int = 0,
    modes: list[str] | None = None,
    actions: list[str] | None = None,
) -> int:
    channel_id: int = await pool.fetchval(
        """
        INSERT INTO channels (name, base_url, secret, weight, priority, modes, actions,
                              callback_token)
        VALUES ($1, $2, $3, $4, $5, coalesce($6, ARRAY['FAST', 'RELAX', 'TURBO']), $7, $8)
        RETURNING id
        """,
        name,
        base_url,
        secret,
        weight,
        priority,
        modes,
        actions,
        secrets.token_urlsafe(24),
    )
    return channel_id


async def set_channel_url(pool: asyncpg.Pool, name: str, base_url: str) -> None:
    """Point an existing channel at a new base URL (no-op when there is no such channel)."""
    await pool.execute(
        "UPDATE channels SET base_url = $2, updated_at = now() WHERE name = $1", name, base_url
    )
