"""Upstream channels: create, edit, enable and disable, their health now, and a test call."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gateway.admin.money import PRICE_ACTION
from gateway.admin.views import as_json
from gateway.domain import MODES
from gateway.errors import BadRequest, NotFound, SealingError
from gateway.routing.cooldowns import Cooldown
from gateway.routing.flavours import DEFAULT_FLAVOUR, FLAVOURS
from gateway.sealing import SecretBox
from gateway.storage import channels as channel_store
from gateway.upstream.client import ProbeResult, UpstreamClient

CHANNEL_NAME = re.compile(r"[\x21-\x7e]{1,128}")
PRINTABLE = re.compile(r"[\x21-\x7e]*")  # what an HTTP header or a URL may carry as it is


BASE_URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")


BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")


@dataclass(frozen=True, slots=True)
class ChannelChanges:
    """What an operator sets on a channel; None leaves a field as it is (``clear_actions``
    and ``clear_max_in_flight`` make those two unlimited again, ``secret=""`` removes it)."""

    name: str | None = None
    base_url: str | None = None
    secret: str | None = None
    weight: int | None = None
    priority: int | None = None
    modes: list[str] | None = None
    actions: list[str] | None = None
    clear_actions: bool = False
    bot_types: list[str] | None = None
    max_in_flight: int | None = None
    clear_max_in_flight: bool = False
    enabled: bool | None = None
    flavour: str | None = None


def _channel_columns(box: SecretBox, changes: ChannelChanges) -> dict[str, Any]:
    """The columns to write, each value checked; BadRequest names the first bad one."""
    if changes.name is not None and not CHANNEL_NAME.fullmatch(changes.name):
        raise BadRequest("a channel name is 1-128 printable characters without spaces")
    if changes.secret is not None and not PRINTABLE.fullmatch(changes.secret):
        raise BadRequest("a secret is printable ASCII without spaces")
    url = changes.base_url
    if url is not None and not (BASE_URL.fullmatch(url) and PRINTABLE.fullmatch(url)):
        raise BadRequest("baseUrl must be an http(s) URL with no query or fragment")
    if changes.weight is not None and not 1 <= changes.weight <= 10_000:
        raise BadRequest("weight is 1 to 10000")
    if changes.priority is not None and not -1000 <= changes.priority <= 1000:
        raise BadRequest("priority is -1000 to 1000")
    if changes.modes is not None and (not changes.modes or not set(changes.modes) <= set(MODES)):
        raise BadRequest(f"modes are one or more of {', '.join(MODES)}")
    if changes.actions is not None and not all(PRICE_ACTION.fullmatch(a) for a in changes.actions):
        raise BadRequest("actions are priced actions: mj_ and lower-case letters, digits or _")
    bot_types = changes.bot_types
    if bot_types is not None and (not bot_types or not set(bot_types) <= set(BOT_TYPES)):
        raise BadRequest(f"botTypes are one or more of {', '.join(BOT_TYPES)}")
    if changes.max_in_flight is not None and not 1 <= changes.max_in_flight <= 1_000_000:
        raise BadRequest("maxInFlight is 1 to 1000000")
    if changes.flavour is not None and changes.flavour not in FLAVOURS:
        raise BadRequest(f"flavour is one of {', '.join(FLAVOURS)}")
    columns: dict[str, Any] = {
        name: getattr(changes, name)
        for name in (
            "name",
            "base_url",
            "weight",
            "priority",
            "modes",
            "actions",
            "bot_types",
            "flavour",
        )
        if getattr(changes, name) is not None
    }
    if changes.secret is not None:
        secret = changes.secret
        columns["secret_sealed"] = (
            box.seal(secret, channel_store.SECRET_PURPOSE) if secret else None
        )
    if changes.clear_actions:
        columns["actions"] = None
    if changes.max_in_flight is not None or changes.clear_max_in_flight:
        columns["max_in_flight"] = changes.max_in_flight
    if changes.enabled is not None:
        columns["enabled"] = changes.enabled
    return columns


async def add_channel(
    pool: asyncpg.Pool,
    box: SecretBox,
    name: str,
    base_url: str,
    changes: ChannelChanges = ChannelChanges(),
) -> int:
    """A new channel, enabled unless ``changes.enabled`` is False; its secret sealed."""
    columns = _channel_columns(box, replace(changes, name=name, base_url=base_url))
    try:
        channel_id = await channel_store.create_channel(
            pool,
            name,
            base_url,
            columns.get("secret_sealed"),
            weight=changes.weight or 1,
            priority=changes.priority or 0,
            modes=changes.modes,
            actions=changes.actions,
            bot_types=changes.bot_types,
            max_in_flight=changes.max_in_flight,
            enabled=changes.enabled is not False,
            flavour=changes.flavour or DEFAULT_FLAVOUR,
        )
    except asyncpg.UniqueViolationError:
        raise BadRequest(f"channel {name} exists") from None
    return channel_id


async def edit_channel(
    pool: asyncpg.Pool, box: SecretBox, channel_id: int, changes: ChannelChanges
) -> None:
    columns = _channel_columns(box, changes)
    if not columns:
        raise BadRequest("nothing to change")
    try:
        found = await channel_store.update_channel(pool, channel_id, columns)
    except asyncpg.UniqueViolationError:
        raise BadRequest(f"channel {changes.name} exists") from None
    if not found:
        raise NotFound(f"no channel {channel_id}")


def channel_view(
    settings: channel_store.ChannelSettings, cooling: dict[int, Cooldown]
) -> dict[str, Any]:
    """A channel's settings and its health now: ``state`` is up, cooling (resting: left out of
    new work until ``coolingUntil``, for ``coolingReason``) or disabled (by the operator)."""
    rest = cooling.get(settings.id)
    state = "disabled" if not settings.enabled else "cooling" if rest else "up"
    view: dict[str, Any] = as_json(settings)
    view["state"] = state
    view["coolingUntil"] = (
        datetime.fromtimestamp(rest.until_ms / 1000, UTC).isoformat() if rest else None
    )
    view["coolingReason"] = rest.reason.value if rest else None
    return view


async def test_channel(
    pool: asyncpg.Pool, box: SecretBox, upstream: UpstreamClient, channel_id: int
) -> ProbeResult:
    """Ask the channel, with its secret, for an empty task list: whether it answers as a
    midjourney-proxy should (enabled or not; its state is not changed)."""
    try:
        channel = await channel_store.get_channel(pool, box, channel_id)
    except SealingError as exc:
        return ProbeResult(False, str(exc), 0.0)
    if channel is None:
        raise NotFound(f"no channel {channel_id}")
    return await upstream.probe(channel)


async def channel_settings(pool: asyncpg.Pool, channel_id: int) -> channel_store.ChannelSettings:
    found = await channel_store.channel_settings(pool, channel_id)
    if not found:
        raise NotFound(f"no channel {channel_id}")
    return found[0]


async def channel_id_by_name(pool: asyncpg.Pool, name: str) -> int:
    for channel in await channel_store.channel_settings(pool):
        if channel.name == name:
            return channel.id
    raise BadRequest(f"no channel {name}")


async def list_channels(pool: asyncpg.Pool) -> list[channel_store.ChannelSettings]:
    return await channel_store.channel_settings(pool)


async def reseal_secrets(pool: asyncpg.Pool, box: SecretBox) -> int:
    """Seal every channel secret again under the box's first key, in one transaction; how many
    there were. SealingError (and nothing changed) if one opens with none of the box's keys."""
    return await channel_store.reseal_secrets(pool, box)
