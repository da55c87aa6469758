"""The ``gateway`` command: the one place settings are read.

gateway migrate    apply pending migrations to the configured (or embedded) database
gateway simulate   run the midjourney-proxy simulator alone
gateway demo       embedded stores, migrations, and a simulator channel, ready to try
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import asyncpg
import structlog

from gateway.config import Settings
from gateway.errors import StartupError
from gateway.logging import configure_logging
from gateway.storage.migrations import apply_migrations, default_migrations_dir
from gateway.storage.servers import Servers, open_servers

log = structlog.get_logger("gateway")


async def _migrate(servers: Servers) -> None:
    conn = await asyncpg.connect(servers.database_url)
    try:
        applied = await apply_migrations(conn, default_migrations_dir())
    finally:
        await conn.close()
    log.info("migrations_applied", versions=[m.version for m in applied])


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> None:
    with open_servers(settings) as servers:
        asyncio.run(_migrate(servers))


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.simulator import run_simulator

    overrides = {
        name: value
        for name, value in (("host", args.host), ("port", args.port), ("speed_factor", args.speed))
        if value is not None
    }
    run_simulator(settings.simulator.model_copy(update=overrides))


def cmd_demo(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.simulator import run_simulator

    with open_servers(settings) as servers:
        asyncio.run(_migrate(servers))
        simulator = settings.simulator.model_copy(
            update={"speed_factor": args.speed} if args.speed is not None else {}
        )
        base = f"http://{simulator.host}:{simulator.port}"
        print(
            f"\nSimulator channel: {base}/mj  (try: curl -s {base}/mj/task/list)\n"
            f"Database: {servers.database_kind}, Redis: {servers.redis_kind}\n",
            flush=True,
        )
        run_simulator(simulator)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("migrate", help="apply pending database migrations").set_defaults(
        run=cmd_migrate
    )

    simulate = commands.add_parser("simulate", help="run the midjourney-proxy simulator")
    simulate.add_argument("--host", help="listen address (GATEWAY_SIMULATOR__HOST)")
    simulate.add_argument("--port", type=int, help="listen port (GATEWAY_SIMULATOR__PORT)")
    simulate.add_argument("--speed", type=float, help="speed factor, 1 = real pace")
    simulate.set_defaults(run=cmd_simulate)

    demo = commands.add_parser("demo", help="run everything locally with a simulator channel")
    demo.add_argument("--speed", type=float, help="simulator speed factor (default 10)")
    demo.set_defaults(run=cmd_demo, speed=10.0)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log)
    try:
        args.run(settings, args)
    except StartupError as exc:
        log.error("startup_failed", error=str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
