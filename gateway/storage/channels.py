"""Channels: the upstream instances the gateway forwards to.

A channel's ``mj-api-secret`` is stored sealed (``secret_sealed``, see ``gateway.sealing``) and
opened only when the channel list is read for routing; the operator's views never carry it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from gateway.domain import Channel
from gateway.errors import SealingError
from gateway.sealing import SecretBox

SECRET_PURPOSE = "channel secret"  # noqa: S105 - associated data naming the value, not a secret

_COLUMNS = """
    id, name, base_url, secret, secret_sealed, weight, priority, modes, actions, bot_types,
    max_in_flight, enabled, callback_token, flavour
"""
_SETTINGS_COLUMNS = """
    id, name, base_url, secret_sealed IS NOT NULL OR secret IS NOT NULL AS has_secret, weight,
    priority, modes, actions, bot_types, max_in_flight, enabled, flavour, created_at, updated_at
"""


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """A channel as the operator sees it: everything but its secret and callback token."""

    id: int
    name: str
    base_url: str
    has_secret: bool
    weight: int
    priority: int
    modes: list[str]
    actions: list[str] | None
    bot_types: list[str]
    max_in_flight: int | None
    enabled: bool
    flavour: str
    created_at: datetime
    updated_at: datetime


def _channel(row: asyncpg.Record, box: SecretBox) -> Channel:
    sealed = row["secret_sealed"]
    return Channel(
        id=row["id"],
        name=row["name"],
        base_url=row["base_url"],
        secret=box.open(sealed, SECRET_PURPOSE) if sealed is not None else row["secret"],
        weight=row["weight"],
        priority=row["priority"],
        modes=frozenset(row["modes"]),
        actions=frozenset(row["actions"]) if row["actions"] is not None else None,
        bot_types=frozenset(row["bot_types"]),
        enabled=row["enabled"],
        callback_token=row["callback_token"],
        max_in_flight=row["max_in_flight"],
        flavour=row["flavour"],
    )


@dataclass(frozen=True, slots=True)
class ChannelList:
    channels: list[Channel]  # with their secrets opened
    unreadable: list[str]  # names of the channels whose secret opens with no configured key


async def list_channels(pool: asyncpg.Pool, box: SecretBox) -> ChannelList:
    """Every channel with its secret opened, for routing and polling; one whose secret does
    not open is left out (and named), so that it cannot take the others down with it."""
    found = ChannelList([], [])
    for row in await pool.fetch(f"SELECT {_COLUMNS} FROM channels ORDER BY id"):
        try:
            found.channels.append(_channel(row, box))
        except SealingError:
            found.unreadable.append(row["name"])
    return found


async def get_channel(pool: asyncpg.Pool, box: SecretBox, channel_id: int) -> Channel | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM channels WHERE id = $1", channel_id)
    return _channel(row, box) if row else None


async def channel_settings(
    pool: asyncpg.Pool, channel_id: int | None = None
) -> list[ChannelSettings]:
    """The operator's view of one channel, or of all of them (by id)."""
    rows = await pool.fetch(
        f"SELECT {_SETTINGS_COLUMNS} FROM channels WHERE $1::BIGINT IS NULL OR id = $1 ORDER BY id",
        channel_id,
    )
    return [ChannelSettings(**dict(row)) for row in rows]


async def create_channel(
    pool: asyncpg.Pool,
    name: str,
    base_url: str,
    secret_sealed: bytes | None,
    *,
    weight: int = 1,
    priority: int = 0,
    modes: list[str] | None = None,
    actions: list[str] | None = None,
    bot_types: list[str] | None = None,
    max_in_flight: int | None = None,
    enabled: bool = True,
    flavour: str = "plus",
) -> int:
    channel_id: int = await pool.fetchval(
        """
        INSERT INTO channels (name, base_url, secret_sealed, weight, priority, modes, actions,
                              bot_types, max_in_flight, enabled, callback_token, flavour)
        VALUES ($1, $2, $3, $4, $5, coalesce($6, ARRAY['FAST', 'RELAX', 'TURBO']), $7,
                coalesce($8, ARRAY['MID_JOURNEY', 'NIJI_JOURNEY']), $9, $10, $11, $12)
        RETURNING id
        """,
        name,
        base_url,
        secret_sealed,
        weight,
        priority,
        modes,
        actions,
        bot_types,
        max_in_flight,
        enabled,
        secrets.token_urlsafe(24),
        flavour,
    )
    return channel_id


# The columns an operator may change, and how each is written; secret_sealed also clears any
# plaintext secret left from before sealing.
_EDITABLE = {
    "name": "name = {}",
    "base_url": "base_url = {}",
    "secret_sealed": "secret_sealed = {}, secret = NULL",
    "weight": "weight = {}",
    "priority": "priority = {}",
    "modes": "modes = {}",
    "actions": "actions = {}",
    "bot_types": "bot_types = {}",
    "max_in_flight": "max_in_flight = {}",
    "enabled": "enabled = {}",
    "flavour": "flavour = {}",
}


async def update_channel(pool: asyncpg.Pool, channel_id: int, changes: dict[str, Any]) -> bool:
    """Apply ``changes`` (column -> value, keys of ``_EDITABLE``); False if no such channel."""
    assignments = [_EDITABLE[column].format(f"${n}") for n, column in enumerate(changes, start=2)]
    found = await pool.fetchval(
        f"UPDATE channels SET {', '.join([*assignments, 'updated_at = now()'])}"
        " WHERE id = $1 RETURNING TRUE",
        channel_id,
        *changes.values(),
    )
    return bool(found)


async def seal_plaintext_secrets(conn: asyncpg.Connection, box: SecretBox) -> int:
    """Seal every secret still stored in plaintext (from before sealing); how many were."""
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT id, secret FROM channels WHERE secret IS NOT NULL FOR UPDATE"
        )
        for row in rows:
            await conn.execute(
                "UPDATE channels SET secret_sealed = $2, secret = NULL WHERE id = $1",
                row["id"],
                box.seal(row["secret"], SECRET_PURPOSE),
            )
    return len(rows)


async def reseal_secrets(pool: asyncpg.Pool, box: SecretBox) -> int:
    """Seal every sealed secret again under the box's first key, in one transaction; how many
    there were. Raises SealingError (and changes nothing) if one opens with none of its keys."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT id, secret_sealed FROM channels WHERE secret_sealed IS NOT NULL FOR UPDATE"
        )
        for row in rows:
            plaintext = box.open(row["secret_sealed"], SECRET_PURPOSE)
            await conn.execute(
                "UPDATE channels SET secret_sealed = $2, updated_at = now() WHERE id = $1",
                row["id"],
                box.seal(plaintext, SECRET_PURPOSE),
            )
    return len(rows)


async def set_channel_url(pool: asyncpg.Pool, name: str, base_url: str) -> None:
    """Point an existing channel at a new base URL (no-op when there is no such channel)."""
    await pool.execute(
        "UPDATE channels SET base_url = $2, updated_at = now() WHERE name = $1", name, base_url
    )
