"""``gateway admin ...``: the admin API's operations, straight in the database.

For bootstrap (the first user, key and channel, before any admin token is in use) and for
scripts. Users and channels are named by name, keys by id. Each command prints one JSON
document, in the admin API's shape (camelCase keys, ISO-8601 times); errors go to the log and
exit with status 2.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from gateway import admin
from gateway.admin import ChannelChanges, as_json
from gateway.auth.authenticator import publish_revocation
from gateway.config import Settings
from gateway.routing.cooldowns import Cooldown, Cooldowns
from gateway.sealing import secret_box
from gateway.storage import channels
from gateway.storage.ledger import LEDGER_KINDS, LedgerSearch
from gateway.storage.redis import create_redis
from gateway.storage.redis_keys import RedisKeys
from gateway.storage.tasks import TaskSearch
from gateway.upstream.client import UpstreamClient

Command = Callable[[asyncpg.Pool, Settings, argparse.Namespace], Awaitable[Any]]


async def announce_revocations(settings: Settings, key_hashes: list[bytes]) -> None:
    """Tell the running gateways to drop these keys from their caches now."""
    if settings.redis.url is None or not key_hashes:
        return  # an embedded Redis serves only its own gateway process, which is not this one
    redis = create_redis(settings.redis.url.get_secret_value())
    try:
        for key_hash in key_hashes:
            await publish_revocation(redis, RedisKeys(settings.redis.key_prefix), key_hash)
    finally:
        await redis.aclose()


def _csv(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


async def _user_id(pool: asyncpg.Pool, name: str | None) -> int | None:
    return await admin.user_id_by_name(pool, name) if name is not None else None


# Users


async def user_create(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    user_id = await admin.create_user(pool, args.name, args.balance, args.group)
    return await admin.user(pool, user_id)


async def user_list(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    return {"users": await admin.list_users(pool, args.name_prefix, args.before, args.limit)}


async def user_show(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    return await admin.user(pool, await admin.user_id_by_name(pool, args.user))


async def _set_user_enabled(
    pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace, enabled: bool
) -> Any:
    user_id = await admin.user_id_by_name(pool, args.user)
    await announce_revocations(settings, await admin.set_user_enabled(pool, user_id, enabled))
    return await admin.user(pool, user_id)


async def user_disable(pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace) -> Any:
    return await _set_user_enabled(pool, settings, args, False)


async def user_enable(pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace) -> Any:
    return await _set_user_enabled(pool, settings, args, True)


async def user_group(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    user_id = await admin.user_id_by_name(pool, args.user)
    await admin.set_user_group(pool, user_id, args.group)
    return await admin.user(pool, user_id)


async def user_limits(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    user_id = await admin.user_id_by_name(pool, args.user)
    await admin.set_user_limits(
        pool, user_id, requests_per_minute=args.rpm, max_open_tasks=args.max_open_tasks
    )
    return await admin.user(pool, user_id)


async def _credit(pool: asyncpg.Pool, args: argparse.Namespace, kind: str) -> Any:
    user_id = await admin.user_id_by_name(pool, args.user)
    done = await admin.credit(
        pool, user_id, args.units, kind=kind, reason=args.reason, reference=args.reference
    )
    return {"applied": done.applied, "balanceUnits": done.balance_units, "source": done.source}


async def topup(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    return await _credit(pool, args, "TOPUP")


async def adjust(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    return await _credit(pool, args, "ADJUST")


# Keys


async def key_create(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    user_id = await admin.user_id_by_name(pool, args.user)
    expires = (
        datetime.now(UTC) + timedelta(days=args.expires_in_days) if args.expires_in_days else None
    )
    issued = await admin.issue_key(
        pool,
        user_id,
        name=args.name or "",
        quota_units=args.quota,
        expires_at=expires,
        allowed_actions=_csv(args.actions),
        allowed_cidrs=_csv(args.cidrs),
        requests_per_minute=args.rpm,
        max_open_tasks=args.max_open_tasks,
    )
    return {"keyId": issued.key_id, "userId": user_id, "key": issued.key}


async def key_list(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    user_id = await _user_id(pool, args.user)
    keys = await admin.list_keys(pool, user_id, args.include_revoked, args.before, args.limit)
    return {"keys": keys}


async def key_revoke(pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace) -> Any:
    await announce_revocations(settings, [await admin.revoke_key(pool, args.key_id)])
    return {"keyId": args.key_id, "revoked": True}


async def key_limit(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    limit = None if args.units == "unlimited" else int(args.units)
    await admin.set_key_limit(pool, args.key_id, limit, args.reason)
    return {"keyId": args.key_id, "limitUnits": limit}


async def key_rate_limits(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    await admin.set_key_rate_limits(
        pool, args.key_id, requests_per_minute=args.rpm, max_open_tasks=args.max_open_tasks
    )
    return {
        "keyId": args.key_id,
        "requestsPerMinute": args.rpm,
        "maxOpenTasks": args.max_open_tasks,
    }


# Channels


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
        modes=_csv(args.modes),
        actions=_csv(args.actions),
        clear_actions=getattr(args, "all_actions", False),
        bot_types=_csv(args.bot_types),
        max_in_flight=args.max_in_flight,
        clear_max_in_flight=getattr(args, "no_max_in_flight", False),
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
    return {"resealed": await channels.reseal_secrets(pool, secret_box(settings))}


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


# Prices and groups


async def prices(pool: asyncpg.Pool, _: Settings, __: argparse.Namespace) -> Any:
    book = await admin.price_list(pool)
    return {
        "pricesUnits": book.prices_units,
        "modeRatiosBp": book.mode_ratios_bp,
        "groups": book.groups,
    }


async def price_set(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    await admin.set_price(pool, args.action, args.units)
    return {"action": args.action, "units": args.units}


async def mode_ratio_set(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    await admin.set_mode_ratio(pool, args.mode, args.ratio_bp)
    return {"mode": args.mode, "ratioBp": args.ratio_bp}


async def group_set(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    await admin.set_group(pool, args.name, args.ratio_bp, args.description)
    return {"name": args.name, "ratioBp": args.ratio_bp}


# Tasks and the ledger


async def tasks(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    channel_id = await admin.channel_id_by_name(pool, args.channel) if args.channel else None
    search = TaskSearch(
        user_id=await _user_id(pool, args.user),
        api_key_id=args.key_id,
        channel_id=channel_id,
        status=args.status,
        since_ms=admin.epoch_ms(admin.instant("--since", args.since)),
        until_ms=admin.epoch_ms(admin.instant("--until", args.until)),
        before_id=args.before,
        limit=args.limit,
    )
    return {"tasks": [admin.task_record(task) for task in await admin.search_tasks(pool, search)]}


async def ledger(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    search = LedgerSearch(
        user_id=await _user_id(pool, args.user),
        api_key_id=args.key_id,
        kind=args.kind,
        since=admin.instant("--since", args.since),
        until=admin.instant("--until", args.until),
        before_id=args.before,
        limit=args.limit,
    )
    return {"entries": await admin.ledger(pool, search)}


def print_result(result: Any) -> None:
    print(json.dumps(as_json(result), default=str), flush=True)


def _page(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--before", type=int, help="page back: ids below this one")
    parser.add_argument("--limit", type=int, default=100, help=f"rows, at most {admin.MAX_PAGE}")


def _rate_limit_options(parser: argparse.ArgumentParser) -> None:
    """Both limits are set together: one left out is no limit of that kind."""
    parser.add_argument("--rpm", type=int, help="requests per minute (default no limit)")
    parser.add_argument("--max-open-tasks", type=int, help="unfinished tasks (default no limit)")


def _channel_options(parser: argparse.ArgumentParser) -> None:
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--secret", help="the upstream's mj-api-secret (stored sealed)")
    secret.add_argument("--secret-file", type=Path, help="the same, read from a file")
    parser.add_argument("--weight", type=int, help="share of its priority tier (default 1)")
    parser.add_argument("--priority", type=int, help="higher tiers are tried first (default 0)")
    parser.add_argument("--modes", help="comma-separated: FAST,RELAX,TURBO (default all)")
    parser.add_argument("--actions", help="comma-separated priced actions (default all)")
    parser.add_argument("--bot-types", help="MID_JOURNEY,NIJI_JOURNEY (default both)")
    parser.add_argument("--max-in-flight", type=int, help="open tasks at once (default no cap)")


def add_admin_parser(commands: Any) -> None:
    """``gateway admin`` and its commands; each sets ``admin_command`` to its coroutine."""
    parser = commands.add_parser("admin", help="users, keys, channels, prices, money, tasks")
    sub = parser.add_subparsers(dest="admin_name", required=True)

    def command(name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
        found: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        found.set_defaults(admin_command=run)
        return found

    user = command("user-create", user_create, "create a user with an opening balance")
    user.add_argument("name")
    user.add_argument("--balance", type=int, default=0, help="opening balance in quota units")
    user.add_argument("--group", default="default")
    users = command("user-list", user_list, "users, newest first")
    users.add_argument("--name-prefix")
    _page(users)
    for name, run, help_text in (
        ("user-show", user_show, "one user: group, balance, state, keys"),
        ("user-disable", user_disable, "stop every key of a user at once"),
        ("user-enable", user_enable, "let a disabled user's keys work again"),
    ):
        command(name, run, help_text).add_argument("user", help="user name")
    group_of = command("user-group", user_group, "move a user to a group")
    group_of.add_argument("user", help="user name")
    group_of.add_argument("group")
    limits = command("user-limits", user_limits, "set a user's limits across all of their keys")
    limits.add_argument("user", help="user name")
    _rate_limit_options(limits)
    for name, run, help_text in (
        ("topup", topup, "add to a user's balance (a TOPUP ledger row)"),
        ("adjust", adjust, "correct a user's balance, either way (an ADJUST ledger row)"),
    ):
        credit = command(name, run, help_text)
        credit.add_argument("user", help="user name")
        credit.add_argument("units", type=int, help="quota units (adjust: negative takes away)")
        credit.add_argument("--reason", required=True, help="why, kept in the ledger")
        credit.add_argument(
            "--reference", help="a payment or ticket id: the same one never moves money twice"
        )

    key = command("key-create", key_create, "issue an API key (printed once)")
    key.add_argument("--user", required=True, help="user name")
    key.add_argument("--name", help="a label for the key")
    key.add_argument("--quota", type=int, help="the key's own limit in units (default unlimited)")
    key.add_argument("--expires-in-days", type=int)
    key.add_argument("--actions", help="comma-separated priced actions allowed, e.g. mj_imagine")
    key.add_argument("--cidrs", help="comma-separated client networks allowed")
    key.add_argument("--rpm", type=int, help="requests per minute allowed")
    key.add_argument("--max-open-tasks", type=int, help="unfinished tasks allowed at once")
    keys = command("key-list", key_list, "keys (never the key itself), newest first")
    keys.add_argument("--user", help="user name")
    keys.add_argument("--include-revoked", action="store_true")
    _page(keys)
    command("key-revoke", key_revoke, "revoke an API key at once").add_argument("key_id", type=int)
    limit = command("key-limit", key_limit, "set what a key may still spend (or unlimited)")
    limit.add_argument("key_id", type=int)
    limit.add_argument("units", help="quota units, or 'unlimited'")
    limit.add_argument("--reason", default="key limit set", help="kept in the ledger")

    key_rates = command("key-rate-limits", key_rate_limits, "set a key's own rate limits")
    key_rates.add_argument("key_id", type=int)
    _rate_limit_options(key_rates)

    channel = command("channel-add", channel_add, "add an upstream channel")
    channel.add_argument("name")
    channel.add_argument("base_url", help="e.g. http://127.0.0.1:8081")
    _channel_options(channel)
    edit = command("channel-edit", channel_edit, "change a channel's settings")
    edit.add_argument("name")
    edit.add_argument("--rename", help="a new name")
    edit.add_argument("--base-url")
    edit.add_argument("--no-secret", action="store_true", help="remove the secret")
    edit.add_argument("--all-actions", action="store_true", help="serve every action again")
    edit.add_argument("--no-max-in-flight", action="store_true", help="lift the cap")
    _channel_options(edit)
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

    command("prices", prices, "the price book: prices, mode ratios, groups")
    price = command("price-set", price_set, "set the base price of a priced action")
    price.add_argument("action", help="e.g. mj_imagine")
    price.add_argument("units", type=int)
    mode = command("mode-ratio-set", mode_ratio_set, "set a speed mode's multiplier")
    mode.add_argument("mode", choices=admin.MODES)
    mode.add_argument("ratio_bp", type=int, help="basis points, 10000 = x1")
    group = command("group-set", group_set, "create a user group or change its ratio")
    group.add_argument("name")
    group.add_argument("ratio_bp", type=int, help="basis points, 10000 = x1")
    group.add_argument("--description")

    found = command("tasks", tasks, "search tasks, newest first")
    found.add_argument("--user", help="user name")
    found.add_argument("--key-id", type=int)
    found.add_argument("--channel", help="channel name")
    found.add_argument("--status", choices=admin.TASK_STATUSES)
    found.add_argument("--since", help="submitted at or after (ISO-8601)")
    found.add_argument("--until", help="submitted before (ISO-8601)")
    _page(found)
    rows = command("ledger", ledger, "ledger rows, newest first")
    rows.add_argument("--user", help="user name")
    rows.add_argument("--key-id", type=int)
    rows.add_argument("--kind", choices=LEDGER_KINDS)
    rows.add_argument("--since", help="at or after (ISO-8601)")
    rows.add_argument("--until", help="before (ISO-8601)")
    _page(rows)
