"""``gateway demo``: a simulator channel, a demo user and key, and the gateway, in one process.

Everything is created on first start and reused after; each start issues a fresh demo key and
prints it with a ready-to-run curl command, and gives the console's customer and operator logins
fresh passwords, printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
from typing import Any

from gateway import admin
from gateway.cli.running import migrate
from gateway.config import Settings
from gateway.console import accounts
from gateway.container import public_base_url
from gateway.domain import KeySettings
from gateway.errors import BadRequest
from gateway.sealing import secret_box
from gateway.storage import channels as channel_store
from gateway.storage.database import create_pool
from gateway.storage.servers import Servers, open_servers

DEMO_USER = "demo"
DEMO_BALANCE_UNITS = 100_000_000
DEMO_CHANNEL = "simulator"
DEMO_OPERATOR = "operator"


async def run_demo(settings: Settings, servers: Servers) -> None:
    # The app, its server and the simulator are imported here: other commands need none of it.
    from gateway.app import create_app
    from gateway.server import bind_socket, start_server
    from gateway.simulator import start_simulator

    simulator = await start_simulator(settings.simulator)
    pool = await create_pool(servers.database_url, settings.database)
    try:
        with contextlib.suppress(BadRequest):
            await admin.create_user(pool, DEMO_USER, DEMO_BALANCE_UNITS)
        user_id = await admin.user_id_by_name(pool, DEMO_USER)
        await channel_store.set_channel_url(pool, DEMO_CHANNEL, simulator.base_url)
        secret = settings.simulator.secret
        with contextlib.suppress(BadRequest):
            await admin.add_channel(
                pool,
                secret_box(settings),
                DEMO_CHANNEL,
                simulator.base_url,
                admin.ChannelChanges(secret=secret.get_secret_value() if secret else None),
            )
        key = (await admin.issue_key(pool, user_id, KeySettings(name="demo"))).key
        with contextlib.suppress(BadRequest):
            await admin.create_user(pool, DEMO_OPERATOR)
        operator_id = await admin.user_id_by_name(pool, DEMO_OPERATOR)
        await admin.set_operator(pool, operator_id, True)
        logins = {}
        for name, login_id in ((DEMO_USER, user_id), (DEMO_OPERATOR, operator_id)):
            logins[name] = secrets.token_urlsafe(12)
            await accounts.set_password(pool, login_id, logins[name])
    finally:
        await pool.close()

    base = public_base_url(settings)
    if settings.upstream.callback_base_url is None:  # the simulator runs here: it can call back
        upstream = settings.upstream.model_copy(update={"callback_base_url": base})
        settings = settings.model_copy(update={"upstream": upstream})
    app = create_app(settings, servers)
    sock = bind_socket(settings.server.host, settings.server.port)
    server = await start_server(app, sock, settings.server)
    print(
        f"""
Gateway:   {base}   (database: {servers.database_kind}, redis: {servers.redis_kind})
Simulator: {simulator.base_url}   (speed x{settings.simulator.speed_factor:g})
API key:   {key}
Console:   {base}/console
           customer  {DEMO_USER} / {logins[DEMO_USER]}
           operator  {DEMO_OPERATOR} / {logins[DEMO_OPERATOR]}

  curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
       -d '{{"prompt": "a lighthouse at dawn"}}' {base}/mj/submit/imagine
  curl -s -H 'Authorization: Bearer {key}' {base}/mj/task/list

Press Ctrl+C to stop.
""",
        flush=True,
    )
    try:
        await server.task
    except asyncio.CancelledError:
        pass
    finally:
        await simulator.stop()


def cmd_demo(settings: Settings, args: argparse.Namespace) -> None:
    simulator = settings.simulator.model_copy(update={"speed_factor": args.speed})
    settings = settings.model_copy(update={"simulator": simulator})
    with open_servers(settings) as servers:
        asyncio.run(migrate(settings, servers))
        asyncio.run(run_demo(settings, servers))


def add_parser(commands: Any) -> None:
    demo = commands.add_parser("demo", help="the gateway in front of a simulator, ready to try")
    demo.add_argument("--speed", type=float, default=10.0, help="simulator speed factor")
    demo.set_defaults(run=cmd_demo)
