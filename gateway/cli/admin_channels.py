"""``gateway admin`` channels: add, edit, list, enable and disable, test; and the sealing key's
rotation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import asyncpg

from gateway import admin
from gateway.admin import ChannelChanges
from gateway.cli.admin_common import Register, csv
from gateway.config import Settings
from gateway.routing.cooldowns import Cooldown, Cooldowns
from gateway.routing.flavours import FLAVOURS
from gateway.sealing import secret_box
from gateway.storage.redis import create_redis
from gateway.storage.redis_keys import RedisKeys
from gateway.upstream.client import UpstreamClient


def _secret(args: argparse.Namespace) -> str | None:
    """The secret given: from ``--secret-file`` (which keeps it out of process lists and shell
    history; surrounding white space dropped), or ``--secret``."""
    if args.secret_file is not None:
        return str(args.secret_file.read_text().strip())
    secret: str | None = args.secret
    return secret


def _channel_changes(args: argparse.Namespace) -> ChannelChanges:
    return ChannelChanges(
        name=getattr(args, "rename", None),
        base_url=getattr(args, "base_url", None),
        secret="" if getattr(args, "no_secret", False) else _secret(args),
        weight=args.weight,
        priority=args.priority,
        modes=csv(args.modes),
        actions=csv(args.actions),
        clear_actions=getattr(args, "all_actions", False),
        bot_types=csv(args.bot_types),
        max_in_flight=args.max_in_flight,
        clear_max_in_flight=getattr(args, "no_max_in_flight", False),
        flavour=args.flavour,
    )


async def _cooling(settings: Settings) -> dict[int, Cooldown]:
    """The channels resting now, as every gateway sees them (none known without a shared
    Redis: an embedded one serves only its own gateway process)."""
    if settings.redis.url is None:
        return {}
    redis = create_redis(settings.redis.url.get_secret_value())
    try:
        keys = RedisKeys(settings.redis.key_prefix)
        return await Cooldowns(redis, keys, settings.upstream.cooldown_s).cooling()
    finally:
        await redis.aclose()


async def _channel(pool: asyncpg.Pool, settings: Settings, channel_id: int) -> Any:
    found = await admin.channel_settings(pool, channel_id)
    return admin.channel_view(found, await _cooling(settings))


async def channel_add(pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace) -> Any:
    channel_id = await admin.add_channel(
        pool, secret_box(settings), args.name, args.base_url, _channel_changes(args)
    )
    return await _channel(pool, settings, channel_id)


async def channel_edit(pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace) -> Any:
    channel_id = await admin.channel_id_by_name(pool, args.name)
    await admin.edit_channel(pool, secret_box(settings), channel_id, _channel_changes(args))
    return await _channel(pool, settings, channel_id)


async def _set_channel_enabled(
    pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace, enabled: bool
) -> Any:
    channel_id = await admin.channel_id_by_name(pool, args.name)
    changes = ChannelChanges(enabled=enabled)
    await admin.edit_channel(pool, secret_box(settings), channel_id, changes)
    return await _channel(pool, settings, channel_id)


async def channel_enable(pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace) -> Any:
    return await _set_channel_enabled(pool, settings, args, True)


async def channel_disable(pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace) -> Any:
    return await _set_channel_enabled(pool, settings, args, False)


async def sealing_key_rotate(
    pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace
) -> Any:
    return {"resealed": await admin.reseal_secrets(pool, secret_box(settings))}


async def channel_list(pool: asyncpg.Pool, settings: Settings, _: argparse.Namespace) -> Any:
    cooling = await _cooling(settings)
    return {"channels": [admin.channel_view(c, cooling) for c in await admin.list_channels(pool)]}


async def channel_test(pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace) -> Any:
    upstream = UpstreamClient(settings.upstream)
    await upstream.start()
    try:
        channel_id = await admin.channel_id_by_name(pool, args.name)
        return await admin.test_channel(pool, secret_box(settings), upstream, channel_id)
    finally:
        await upstream.close()


def channel_options(parser: argparse.ArgumentParser) -> None:
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--secret", help="the upstream's mj-api-secret (stored sealed)")
    secret.add_argument("--secret-file", type=Path, help="the same, read from a file")
    parser.add_argument("--weight", type=int, help="share of its priority tier (default 1)")
    parser.add_argument("--priority", type=int, help="higher tiers are tried first (default 0)")
    parser.add_argument("--modes", help="comma-separated: FAST,RELAX,TURBO (default all)")
    parser.add_argument("--actions", help="comma-separated priced actions (default all)")
    parser.add_argument("--bot-types", help="MID_JOURNEY,NIJI_JOURNEY (default both)")
    parser.add_argument("--max-in-flight", type=int, help="open tasks at once (default no cap)")
    parser.add_argument(
        "--flavour", choices=FLAVOURS, help="which midjourney-proxy it is (default plus)"
    )


def register(command: Register) -> None:
    channel = command("channel-add", channel_add, "add an upstream channel")
    channel.add_argument("name")
    channel.add_argument("base_url", help="e.g. http://127.0.0.1:8081")
    channel_options(channel)
    edit = command("channel-edit", channel_edit, "change a channel's settings")
    edit.add_argument("name")
    edit.add_argument("--rename", help="a new name")
    edit.add_argument("--base-url")
    edit.add_argument("--no-secret", action="store_true", help="remove the secret")
    edit.add_argument("--all-actions", action="store_true", help="serve every action again")
    edit.add_argument("--no-max-in-flight", action="store_true", help="lift the cap")
    channel_options(edit)
    command("channel-list", channel_list, "every channel's settings (never its secret)")
    command(
        "sealing-key-rotate",
        sealing_key_rotate,
        "seal every channel secret again under GATEWAY_RELAY__SEALING_KEY (old keys in"
        " GATEWAY_RELAY__SEALING_OLD_KEYS)",
    )
    for name, run, help_text in (
        ("channel-enable", channel_enable, "send new work to a channel again"),
        ("channel-disable", channel_disable, "send no new work to a channel"),
        ("channel-test", channel_test, "ask a channel, with its secret, for an empty task list"),
    ):
        command(name, run, help_text).add_argument("name")
