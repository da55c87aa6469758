"""The channel list every process works from: read from PostgreSQL, kept for a few seconds."""

from __future__ import annotations

import hmac
import time

import asyncpg
import structlog

from gateway.domain import Channel
from gateway.sealing import SecretBox
from gateway.storage.channels import list_channels

log = structlog.get_logger(__name__)


class ChannelDirectory:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox, refresh_s: float = 2.0) -> None:
        self._pool = pool
        self._box = box
        self._unreadable: list[str] = []  # channels left out: their secret does not open
        self._refresh_s = refresh_s
        self._channels: dict[int, Channel] = {}
        self._loaded_at = float("-inf")  # when the kept list was read (monotonic)
        self._invalidated_at = float("-inf")

    async def channels(self) -> list[Channel]:
        """Every channel, enabled or not, at most ``refresh_s`` old."""
        if time.monotonic() - self._loaded_at > self._refresh_s:
            started = time.monotonic()
            found = await list_channels(self._pool, self._box)
            if found.unreadable != self._unreadable:
                self._unreadable = found.unreadable
                if found.unreadable:
                    log.error("channel_secret_unreadable", channels=found.unreadable)
            self._channels = {c.id: c for c in found.channels}
            # A read already under way when ``invalidate`` was called may miss the change: the
            # next call reads again.
            self._loaded_at = started if started > self._invalidated_at else float("-inf")
        return list(self._channels.values())

    async def get(self, channel_id: int) -> Channel | None:
        if channel_id not in self._channels:
            self._loaded_at = float("-inf")
        await self.channels()
        return self._channels.get(channel_id)

    async def by_callback_token(self, token: str) -> Channel | None:
        """The channel whose callback URLs carry ``token`` (compared in constant time)."""
        found = None
        for channel in await self.channels():
            if hmac.compare_digest(channel.callback_token.encode(), token.encode()):
                found = channel
        return found

    def invalidate(self) -> None:
        """The channels changed: the next call reads them afresh, even one already reading."""
        self._loaded_at = float("-inf")
        self._invalidated_at = time.monotonic()
