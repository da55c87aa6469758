"""The ``gateway`` command: the one place settings are read.

gateway serve      run the gateway (``--workers N`` processes)
gateway demo       embedded stores, a simulator channel, a demo user and key, the gateway
gateway migrate    apply pending migrations
gateway simulate   run the midjourney-proxy simulator alone
gateway admin ...  users, keys, channels and money, straight in the database
gateway reconcile  check that the money adds up; exit 1 on any gap
gateway bench      submits/s, fetches/s and latency, through the gateway and straight
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from gateway import admin
from gateway.config import Settings
from gateway.errors import ApiError, StartupError
from gateway.logging import configure_logging
from gateway.storage.database import create_pool
from gateway.storage.migrations import apply_migrations
from gateway.storage.servers import Servers, open_servers

log = structlog.get_logger("gateway")


async def _migrate(settings: Settings, servers: Servers) -> None:
    conn = await asyncpg.connect(servers.database_url)
    try:
        applied = await apply_migrations(conn, settings.migrations_dir)
    finally:
        await conn.close()
    log.info("migrations_applied", versions=[m.version for m in applied])


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> None:
    with open_servers(settings) as servers:
        asyncio.run(_migrate(settings, servers))


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.server import run_workers

    if args.workers is not None:
        settings = settings.model_copy(
            update={"server": settings.server.model_copy(update={"workers": args.workers})}
        )
    with open_servers(settings) as servers:
        asyncio.run(_migrate(settings, servers))
        log.info("serving", host=settings.server.host, port=settings.server.port)
        run_workers(settings, servers)


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.simulator import run_simulator

    overrides = {
        name: value
        for name, value in (("host", args.host), ("port", args.port), ("speed_factor", args.speed))
        if value is not None
    }
    run_simulator(settings.simulator.model_copy(update=overrides))


def cmd_demo(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.demo import run_demo

    simulator = settings.simulator.model_copy(update={"speed_factor": args.speed})
    settings = settings.model_copy(update={"simulator": simulator})
    with open_servers(settings) as servers:
        asyncio.run(_migrate(settings, servers))
        asyncio.run(run_demo(settings, servers))


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.billing.reconciliation import reconcile

    outcome: dict[str, Any] = {}

    async def act(pool: asyncpg.Pool) -> None:
        outcome["report"] = await reconcile(pool, args.hold_grace)

    _with_pool(settings, act)
    report = outcome["report"]
    print(json.dumps(report.summary(), default=str, indent=2), flush=True)
    if not report.ok:
        sys.exit(1)


def cmd_bench(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.bench import run_bench, run_latency

    if args.latency:
        run_latency(settings, args)
        return
    run_bench(settings, args)


def _with_pool(settings: Settings, action: Callable[[asyncpg.Pool], Awaitable[None]]) -> None:
    async def run(servers: Servers) -> None:
        pool = await create_pool(
            servers.database_url, settings.database.model_copy(update={"pool_min_size": 1})
        )
        try:
            await action(pool)
        finally:
            await pool.close()

    with open_servers(settings) as servers:
        asyncio.run(run(servers))


async def _announce_revocation(settings: Settings, key_hash: bytes) -> None:
    from gateway.auth.service import publish_revocation
    from gateway.storage.redis import create_redis
    from gateway.storage.redis_keys import RedisKeys

    if settings.redis.url is None:
        return  # an embedded Redis serves only its own gateway process, which is not this one
    redis = create_redis(settings.redis.url.get_secret_value())
    try:
        await publish_revocation(redis, RedisKeys(settings.redis.key_prefix), key_hash)
    finally:
        await redis.aclose()


def _csv(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def cmd_admin(settings: Settings, args: argparse.Namespace) -> None:
    async def act(pool: asyncpg.Pool) -> None:
        result: dict[str, Any]
        match args.admin_command:
            case "user-create":
                user_id = await admin.create_user(pool, args.name, args.balance, args.group)
                result = {"user_id": user_id, "name": args.name, "balance_units": args.balance}
            case "key-create":
                user_id = await admin.user_id_by_name(pool, args.user)
                expires = (
                    datetime.now(UTC) + timedelta(days=args.expires_in_days)
                    if args.expires_in_days
                    else None
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
                result = {"key_id": issued.key_id, "key": issued.key}
            case "key-revoke":
                key_hash = await admin.revoke_key(pool, args.key_id)
                await _announce_revocation(settings, key_hash)
                result = {"key_id": args.key_id, "revoked": True}
            case "channel-add":
                channel_id = await admin.add_channel(
                    pool,
                    args.name,
                    args.base_url,
                    args.secret,
                    weight=args.weight,
                    priority=args.priority,
                    modes=_csv(args.modes),
                    actions=_csv(args.actions),
                )
                result = {"channel_id": channel_id, "name": args.name}
            case "topup" | "adjust":
                user_id = await admin.user_id_by_name(pool, args.user)
                done = await admin.credit(
                    pool,
                    user_id,
                    args.units,
                    kind=args.admin_command.upper(),
                    reason=args.reason,
                    reference=args.reference,
                )
                result = {
                    "user": args.user,
                    "applied": done.applied,
                    "balance_units": done.balance_units,
                    "source": done.source,
                }
            case "price-set":
                await admin.set_price(pool, args.action, args.units)
                result = {"action": args.action, "price_units": args.units}
            case "mode-ratio-set":
                await admin.set_mode_ratio(pool, args.mode, args.ratio_bp)
                result = {"mode": args.mode, "ratio_bp": args.ratio_bp}
            case "group-set":
                await admin.set_group(pool, args.name, args.ratio_bp, args.description)
                result = {"group": args.name, "ratio_bp": args.ratio_bp}
            case "user-group":
                user_id = await admin.user_id_by_name(pool, args.user)
                await admin.set_user_group(pool, user_id, args.group)
                result = {"user": args.user, "group": args.group}
            case "prices":
                book = await admin.price_list(pool)
                result = {
                    "prices_units": book.prices_units,
                    "mode_ratios_bp": book.mode_ratios_bp,
                    "groups": {g.name: g.ratio_bp for g in book.groups},
                }
            case "key-limit":
                limit = None if args.units == "unlimited" else int(args.units)
                await admin.set_key_limit(pool, args.key_id, limit, args.reason)
                result = {"key_id": args.key_id, "limit_units": limit}
            case _:
                raise SystemExit(f"unknown admin command {args.admin_command}")
        print(result, flush=True)

    _with_pool(settings, act)


def _admin_parser(commands: Any) -> None:
    parser = commands.add_parser("admin", help="manage users, keys and channels")
    parser.set_defaults(run=cmd_admin)
    sub = parser.add_subparsers(dest="admin_command", required=True)

    user = sub.add_parser("user-create", help="create a user with an opening balance")
    user.add_argument("name")
    user.add_argument("--balance", type=int, default=0, help="opening balance in quota units")
    user.add_argument("--group", default="default")

    key = sub.add_parser("key-create", help="issue an API key (printed once)")
    key.add_argument("--user", required=True, help="user name")
    key.add_argument("--name", help="a label for the key")
    key.add_argument("--quota", type=int, help="the key's own limit in units (default unlimited)")
    key.add_argument("--expires-in-days", type=int)
    key.add_argument("--actions", help="comma-separated priced actions allowed, e.g. mj_imagine")
    key.add_argument("--cidrs", help="comma-separated client networks allowed")
    key.add_argument("--rpm", type=int, help="requests per minute allowed")
    key.add_argument("--max-open-tasks", type=int, help="unfinished tasks allowed at once")

    revoke = sub.add_parser("key-revoke", help="revoke an API key at once")
    revoke.add_argument("key_id", type=int)

    for kind, help_text in (
        ("topup", "add to a user's balance (a TOPUP ledger row)"),
        ("adjust", "correct a user's balance, either way (an ADJUST ledger row)"),
    ):
        credit = sub.add_parser(kind, help=help_text)
        credit.add_argument("user", help="user name")
        credit.add_argument("units", type=int, help="quota units (adjust: negative takes away)")
        credit.add_argument("--reason", required=True, help="why, kept in the ledger")
        credit.add_argument(
            "--reference", help="a payment or ticket id: the same one never moves money twice"
        )

    sub.add_parser("prices", help="the price book: prices, mode ratios, groups")
    price = sub.add_parser("price-set", help="set the base price of a priced action")
    price.add_argument("action", help="e.g. mj_imagine")
    price.add_argument("units", type=int)
    mode = sub.add_parser("mode-ratio-set", help="set a speed mode's multiplier")
    mode.add_argument("mode", choices=["FAST", "RELAX", "TURBO"])
    mode.add_argument("ratio_bp", type=int, help="basis points, 10000 = x1")
    group = sub.add_parser("group-set", help="create a user group or change its ratio")
    group.add_argument("name")
    group.add_argument("ratio_bp", type=int, help="basis points, 10000 = x1")
    group.add_argument("--description")
    user_group = sub.add_parser("user-group", help="move a user to a group")
    user_group.add_argument("user", help="user name")
    user_group.add_argument("group")

    limit = sub.add_parser("key-limit", help="set what a key may still spend (or unlimited)")
    limit.add_argument("key_id", type=int)
    limit.add_argument("units", help="quota units, or 'unlimited'")
    limit.add_argument("--reason", default="key limit set", help="kept in the ledger")

    channel = sub.add_parser("channel-add", help="add an upstream channel")
    channel.add_argument("name")
    channel.add_argument("base_url", help="e.g. http://127.0.0.1:8081")
    channel.add_argument("--secret", help="the upstream's mj-api-secret")
    channel.add_argument("--weight", type=int, default=1)
    channel.add_argument("--priority", type=int, default=0)
    channel.add_argument("--modes", help="comma-separated: FAST,RELAX,TURBO (default all)")
    channel.add_argument("--actions", help="comma-separated priced actions (default all)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="A metered relay for /mj.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--workers", type=int, help="worker processes (GATEWAY_SERVER__WORKERS)")
    serve.set_defaults(run=cmd_serve)

    demo = commands.add_parser("demo", help="the gateway in front of a simulator, ready to try")
    demo.add_argument("--speed", type=float, default=10.0, help="simulator speed factor")
    demo.set_defaults(run=cmd_demo)

    commands.add_parser("migrate", help="apply pending database migrations").set_defaults(
        run=cmd_migrate
    )

    simulate = commands.add_parser("simulate", help="run the midjourney-proxy simulator")
    simulate.add_argument("--host", help="listen address (GATEWAY_SIMULATOR__HOST)")
    simulate.add_argument("--port", type=int, help="listen port (GATEWAY_SIMULATOR__PORT)")
    simulate.add_argument("--speed", type=float, help="speed factor, 1 = real pace")
    simulate.set_defaults(run=cmd_simulate)

    bench = commands.add_parser("bench", help="measure the gateway against a fast simulator")
    bench.add_argument("--duration", type=int, default=10, help="seconds per phase")
    bench.add_argument("--concurrency", type=int, default=64, help="connections at once")
    bench.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    bench.add_argument(
        "--latency",
        action="store_true",
        help="instead: how soon after the upstream finishes a task the gateway shows it, "
        "with callbacks and with polling only",
    )
    bench.add_argument("--tasks", type=int, default=30, help="tasks watched (--latency)")
    bench.set_defaults(run=cmd_bench)

    reconcile = commands.add_parser(
        "reconcile", help="check that every balance, key limit, hold and task adds up"
    )
    reconcile.add_argument(
        "--hold-grace",
        type=float,
        default=60.0,
        help="seconds an open hold may be past its deadline before it counts as a gap",
    )
    reconcile.set_defaults(run=cmd_reconcile)

    _admin_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log)
    try:
        args.run(settings, args)
    except (StartupError, ApiError) as exc:
        log.error("command_failed", error=str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
