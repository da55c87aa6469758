"""``gateway serve``, ``migrate``, ``simulate``, ``reconcile`` and ``bench``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from gateway.config import Settings
from gateway.sealing import secret_box
from gateway.storage.channels import seal_plaintext_secrets
from gateway.storage.database import create_pool
from gateway.storage.migrations import apply_migrations
from gateway.storage.servers import Servers, open_servers

log = structlog.get_logger("gateway")


async def migrate(settings: Settings, servers: Servers) -> None:
    conn = await asyncpg.connect(servers.database_url)
    try:
        applied = await apply_migrations(conn, settings.migrations_dir)
        sealed = await seal_plaintext_secrets(conn, secret_box(settings))
    finally:
        await conn.close()
    log.info("migrations_applied", versions=[m.version for m in applied], secrets_sealed=sealed)


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> None:
    with open_servers(settings) as servers:
        asyncio.run(migrate(settings, servers))


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.server import run_workers

    if args.workers is not None:
        settings = settings.model_copy(
            update={"server": settings.server.model_copy(update={"workers": args.workers})}
        )
    with open_servers(settings) as servers:
        asyncio.run(migrate(settings, servers))
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


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.billing.reconciliation import reconcile

    outcome: dict[str, Any] = {}

    async def act(pool: asyncpg.Pool) -> None:
        outcome["report"] = await reconcile(pool, args.hold_grace)

    with_pool(settings, act)
    report = outcome["report"]
    print(json.dumps(report.summary(), default=str, indent=2), flush=True)
    if not report.ok:
        sys.exit(1)


def cmd_bench(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.bench import run_bench, run_latency, run_media, run_polling

    if args.latency:
        run_latency(settings, args)
    elif args.open_tasks:
        run_polling(settings, args)
    elif args.media:
        run_media(settings, args)
    else:
        run_bench(settings, args)


def with_pool(settings: Settings, action: Callable[[asyncpg.Pool], Awaitable[None]]) -> None:
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


def add_parsers(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--workers", type=int, help="worker processes (GATEWAY_SERVER__WORKERS)")
    serve.set_defaults(run=cmd_serve)

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
    bench.add_argument(
        "--overhead",
        action="store_true",
        help="the same phases at one connection: what the gateway adds to each call",
    )
    bench.add_argument(
        "--mixed",
        action="store_true",
        help="instead: one phase through the gateway, a submit then 10 fetches, with the"
        " workers' resident memory read every 10 s",
    )
    bench.add_argument(
        "--seed-rows",
        type=int,
        default=0,
        help="first fill the database with this many tasks of 10,000 users over a year, with"
        " their holds and ledger rows, and time gateway reconcile over them",
    )
    bench.add_argument("--tasks", type=int, default=30, help="tasks watched (--latency)")
    bench.add_argument(
        "--media",
        action="store_true",
        help="instead: one image fetched many times once the media store holds it",
    )
    bench.add_argument("--fetches", type=int, default=1000, help="image fetches (--media)")
    bench.add_argument(
        "--open-tasks",
        type=int,
        default=0,
        help="instead: keep this many tasks open on 4 slow simulator channels and measure the"
        " poller's lag and CPU for --duration seconds",
    )
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
