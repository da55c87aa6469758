"""``gateway admin`` users and their keys: create, list, show, disable and enable, group,
rate limits; issue, list and revoke keys."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from gateway import admin
from gateway.auth.authenticator import publish_revocation
from gateway.cli.admin_common import Register, csv, optional_user_id, page, rate_limit_options
from gateway.config import Settings
from gateway.console import accounts
from gateway.container import public_base_url
from gateway.domain import KeySettings
from gateway.storage.redis import create_redis
from gateway.storage.redis_keys import RedisKeys


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


async def user_invite(pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace) -> Any:
    """A link that sets the user's console password once (and, with ``--operator``, makes
    them an operator): the first operator's way in, and any user's password reset."""
    user_id = await admin.user_id_by_name(pool, args.user)
    if args.operator is not None:
        await admin.set_operator(pool, user_id, args.operator)
    token = await accounts.invite(pool, user_id, settings.console.invitation_ttl_s)
    return {
        "userId": user_id,
        "operator": args.operator,
        "invitation": f"{public_base_url(settings)}{accounts.INVITATION_PATH}{token}",
        "expiresInSeconds": settings.console.invitation_ttl_s,
    }


async def key_create(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    user_id = await admin.user_id_by_name(pool, args.user)
    expires = (
        datetime.now(UTC) + timedelta(days=args.expires_in_days) if args.expires_in_days else None
    )
    settings = KeySettings(
        name=args.name or "",
        quota_units=args.quota,
        expires_at=expires,
        allowed_actions=csv(args.actions),
        allowed_cidrs=csv(args.cidrs),
        requests_per_minute=args.rpm,
        max_open_tasks=args.max_open_tasks,
    )
    issued = await admin.issue_key(pool, user_id, settings)
    return {"keyId": issued.key_id, "userId": user_id, "key": issued.key}


async def key_list(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    user_id = await optional_user_id(pool, args.user)
    keys = await admin.list_keys(pool, user_id, args.include_revoked, args.before, args.limit)
    return {"keys": keys}


async def key_revoke(pool: asyncpg.Pool, settings: Settings, args: argparse.Namespace) -> Any:
    await announce_revocations(settings, [await admin.revoke_key(pool, args.key_id)])
    return {"keyId": args.key_id, "revoked": True}


async def key_rate_limits(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    await admin.set_key_rate_limits(
        pool, args.key_id, requests_per_minute=args.rpm, max_open_tasks=args.max_open_tasks
    )
    return {
        "keyId": args.key_id,
        "requestsPerMinute": args.rpm,
        "maxOpenTasks": args.max_open_tasks,
    }


def register(command: Register) -> None:
    user = command("user-create", user_create, "create a user with an opening balance")
    user.add_argument("name")
    user.add_argument("--balance", type=int, default=0, help="opening balance in quota units")
    user.add_argument("--group", default="default")
    users = command("user-list", user_list, "users, newest first")
    users.add_argument("--name-prefix")
    page(users)
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
    rate_limit_options(limits)
    invite = command("user-invite", user_invite, "a one-time link to set a console password")
    invite.add_argument("user", help="user name")
    invite.add_argument(
        "--operator",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="make (or with --no-operator, stop making) the user an operator of the console",
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
    page(keys)
    command("key-revoke", key_revoke, "revoke an API key at once").add_argument("key_id", type=int)
    key_rates = command("key-rate-limits", key_rate_limits, "set a key's own rate limits")
    key_rates.add_argument("key_id", type=int)
    rate_limit_options(key_rates)
