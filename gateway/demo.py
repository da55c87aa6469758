"""``gateway demo``: a simulator channel, a demo user and key, and the gateway, in one process.

Everything is created on first start and reused after; each start issues a fresh demo key and
prints it with a ready-to-run curl command.
"""

from __future__ import annotations

import asyncio
import contextlib

from gateway import admin
from gateway.app import create_app
from gateway.config import Settings
from gateway.container import public_base_url
from gateway.errors import BadRequest
from gateway.sealing import secret_box
from gateway.server import bind_socket, start_server
from gateway.simulator import start_simulator
from gateway.storage import channels as channel_store
from gateway.storage.database import create_pool
from gateway.storage.servers import Servers

DEMO_USER = "demo"
DEMO_BALANCE_UNITS = 100_000_000
DEMO_CHANNEL = "simulator"


async def run_demo(settings: Settings, servers: Servers) -> None:
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
        key = (await admin.issue_key(pool, user_id, name="demo")).key
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
