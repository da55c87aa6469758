"""Fixtures shared by every test: real servers only.

PostgreSQL and Redis are the servers named by ``GATEWAY_TEST_DATABASE_URL`` and
``GATEWAY_TEST_REDIS_URL`` when set, else embedded ones started for the session. Each test gets
its own database, cloned from a migrated template, and its own Redis key prefix. The simulator
runs in-process on the test's event loop, on a free loopback port, fast.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from gateway import admin
from gateway.app import create_app
from gateway.config import DatabaseSettings, Settings, SimulatorSettings, default_migrations_dir
from gateway.container import Services
from gateway.domain import KeySettings
from gateway.server import RunningServer, bind_socket, start_server
from gateway.simulator import RunningSimulator, start_simulator
from gateway.storage.database import create_pool
from gateway.storage.migrations import apply_migrations
from gateway.storage.redis import create_redis
from gateway.storage.servers import Servers, open_servers
from tests.processes import StartGatewayProcess, gateway_processes
from tests.support import SEALING_KEY, with_database

_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    """The PostgreSQL and Redis of this test session (configured, or embedded in a temp dir).

    The embedded servers' folder is not under pytest's temp root, which other pytest sessions
    on the same machine prune while this one runs.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="gw-test-data-"))
    settings = Settings(
        data_dir=data_dir,
        database={"url": os.environ.get("GATEWAY_TEST_DATABASE_URL") or None},
        redis={"url": os.environ.get("GATEWAY_TEST_REDIS_URL") or None},
    )
    try:
        with open_servers(settings) as resolved:
            yield resolved
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def _admin_execute(servers: Servers, sql: str) -> None:
    admin = await asyncpg.connect(servers.database_url)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def template_database(servers: Servers) -> AsyncIterator[str]:
    """Name of a database migrated to the latest version, cloned by every test."""
    name = f"gw_template_{os.getpid()}"
    await _admin_execute(servers, f'DROP DATABASE IF EXISTS "{name}"')
    await _admin_execute(servers, f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(with_database(servers.database_url, name))
    try:
        await apply_migrations(conn, default_migrations_dir())
    finally:
        await conn.close()
    yield name
    await _admin_execute(servers, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _fresh_database(servers: Servers, template: str) -> AsyncIterator[str]:
    name = f"gw_test_{os.getpid()}_{next(_database_numbers)}"
    await _admin_execute(servers, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield with_database(servers.database_url, name)
    await _admin_execute(servers, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def database_url(servers: Servers, template_database: str) -> AsyncIterator[str]:
    """URL of a fresh migrated database of this test's own, dropped afterwards."""
    async for url in _fresh_database(servers, template_database):
        yield url


@pytest.fixture
async def empty_database_url(servers: Servers) -> AsyncIterator[str]:
    """URL of a fresh database with no schema at all, dropped afterwards."""
    async for url in _fresh_database(servers, "template0"):
        yield url


@pytest.fixture
async def db_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, DatabaseSettings(pool_min_size=1, pool_max_size=10))
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def redis_prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def redis_client(servers: Servers, redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A client on the session's Redis; every key under this test's prefix is deleted after."""
    client = create_redis(servers.redis_url)
    try:
        yield client
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


SIMULATOR_SECRET = "sim-test-secret"

StartSimulator = Callable[..., Awaitable[RunningSimulator]]


@pytest.fixture
async def simulator_factory() -> AsyncIterator[StartSimulator]:
    """Start simulators with per-test settings; every one is stopped after the test.

    Defaults: port 0, secret ``SIMULATOR_SECRET``, speed factor 1000, seed 1, and a task timeout
    of 30 s at that speed (the real 300 s would be 0.3 s, which a busy machine's event-loop lag
    can reach before a task's chained steps finish; tests of the timeout set their own). Keyword
    arguments override any ``SimulatorSettings`` field (``faults``: a dict or ``SimulatorFaults``).
    """
    running: list[RunningSimulator] = []

    async def start(**overrides: Any) -> RunningSimulator:
        fields: dict[str, Any] = {
            "port": 0,
            "secret": SecretStr(SIMULATOR_SECRET),
            "speed_factor": 1000.0,
            "task_timeout_s": 30_000.0,
            "seed": 1,
        }
        fields.update(overrides)
        sim = await start_simulator(SimulatorSettings(**fields))
        running.append(sim)
        return sim

    yield start
    for sim in running:
        await sim.stop()


@pytest.fixture
async def simulator(simulator_factory: StartSimulator) -> RunningSimulator:
    """One simulator with the defaults of ``simulator_factory``."""
    return await simulator_factory()


@dataclass
class Gateway:
    """A gateway served over real HTTP on loopback, with its services for direct checks."""

    base_url: str
    settings: Settings
    services: Services
    http: httpx.AsyncClient

    async def create_user(self, name: str = "alice", balance_units: int = 1_000_000) -> int:
        return await admin.create_user(self.services.pool, name, balance_units)

    async def issue_key(self, user_id: int, **options: Any) -> str:
        return (await admin.issue_key(self.services.pool, user_id, KeySettings(**options))).key

    async def client_with_key(self, balance_units: int = 1_000_000, name: str = "alice") -> Client:
        user_id = await self.create_user(name, balance_units)
        key = await self.issue_key(user_id)
        return Client(self, user_id, key)

    async def add_channel(
        self,
        simulator: RunningSimulator,
        name: str = "sim",
        base_url: str | None = None,
        **options: Any,
    ) -> int:
        """The simulator as a channel; ``base_url``: another way to reach it (a proxy)."""
        url = base_url or simulator.base_url
        channel_id = await admin.add_channel(
            self.services.pool,
            self.services.box,
            name,
            url,
            admin.ChannelChanges(secret=SIMULATOR_SECRET, **options),
        )
        self.services.channels.invalidate()
        return channel_id

    async def balance(self, user_id: int) -> int | None:
        return await self.services.pool.fetchval(
            "SELECT balance_units FROM users WHERE id = $1", user_id
        )


@dataclass
class Client:
    """One user's API key against a Gateway."""

    gateway: Gateway
    user_id: int
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        merged = {**self.headers, **(headers or {})}
        return await self.gateway.http.post(path, json=body, headers=merged, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.gateway.http.get(path, headers=self.headers, **kwargs)

    async def balance(self) -> int | None:
        return await self.gateway.balance(self.user_id)

    async def key_id(self) -> int:
        """The id of this client's key (its user's only key)."""
        key_id: int = await self.gateway.services.pool.fetchval(
            "SELECT id FROM api_keys WHERE user_id = $1", self.user_id
        )
        return key_id

    async def wait_for(
        self, task_id: str, statuses: set[str], timeout_s: float = 10.0
    ) -> dict[str, Any]:
        """Poll fetch until the task reaches one of ``statuses``; fails the test on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        task: dict[str, Any] = {}
        while asyncio.get_running_loop().time() < deadline:
            response = await self.get(f"/mj/task/{task_id}/fetch")
            assert response.status_code == 200, response.text
            task = response.json()
            if task["status"] in statuses:
                return task
            await asyncio.sleep(0.02)
        raise AssertionError(f"task {task_id} never reached {statuses}; last seen {task}")


StartGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def gateway_process_factory(
    servers: Servers, database_url: str, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[StartGatewayProcess]:
    """Start ``gateway serve`` processes on the test's database and Redis prefix; keyword
    arguments are more settings, as environment variables (``GATEWAY_RELAY__...="..."``)."""
    base_env = {
        "GATEWAY_DATABASE__URL": database_url,
        "GATEWAY_REDIS__URL": servers.redis_url,
        "GATEWAY_REDIS__KEY_PREFIX": redis_prefix,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_RELAY__SECRET_KEY": "test-signing-key",
        "GATEWAY_RELAY__SEALING_KEY": SEALING_KEY,
        "GATEWAY_RELAY__POLL_INTERVAL_S": "0.1",
        "GATEWAY_MEDIA__KEEP": "false",
        "GATEWAY_LOG__LEVEL": "WARNING",
        "GATEWAY_LOG__FORMAT": "json",
    }
    async with gateway_processes(base_env, tmp_path) as start:
        yield start


@pytest.fixture
async def gateway_factory(
    servers: Servers, database_url: str, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[StartGateway]:
    """Start gateways on the test's database and Redis prefix; ``relay``, ``upstream``,
    ``server``, ``admin`` and ``media`` keyword arguments override those settings groups.
    Results are not copied into the media store unless ``media`` says ``keep``: the copies
    cost CPU that the other tests' timings do not expect."""
    running: list[tuple[RunningServer, httpx.AsyncClient]] = []

    async def start(
        *,
        through: str | None = None,
        redis_through: str | None = None,
        callbacks: bool = False,
        rate_clock_ms: Callable[[], int] | None = None,
        **groups: dict[str, Any],
    ) -> Gateway:
        """``through``: another URL of the test's database (a proxy, say) for the gateway;
        ``redis_through``: the same for the test's Redis; ``callbacks``: upstreams are asked to
        call back to this gateway; ``rate_clock_ms``: the clock of its per-minute windows."""
        url = through or database_url
        redis_url = redis_through or servers.redis_url
        sock = bind_socket("127.0.0.1", 0)
        port = sock.getsockname()[1]
        if callbacks:
            own = {"callback_base_url": f"http://127.0.0.1:{port}"}
            groups["upstream"] = own | groups.get("upstream", {})
        settings = Settings(
            data_dir=tmp_path,
            database={"url": url, "pool_min_size": 1, "pool_max_size": 10},
            redis={"url": redis_url, "key_prefix": redis_prefix},
            server={"port": port, "public_base_url": f"http://127.0.0.1:{port}"}
            | groups.get("server", {}),
            relay={
                "secret_key": "test-signing-key",
                "sealing_key": SEALING_KEY,
                "poll_interval_s": 0.05,
            }
            | groups.get("relay", {}),
            upstream={"submit_timeout_s": 5.0, "fetch_timeout_s": 5.0} | groups.get("upstream", {}),
            admin=groups.get("admin", {}),
            media={"keep": False} | groups.get("media", {}),
        )
        app = create_app(
            settings,
            dataclasses.replace(servers, database_url=url, redis_url=redis_url),
            rate_clock_ms=rate_clock_ms,
        )
        server = await start_server(app, sock, settings.server)
        http = httpx.AsyncClient(base_url=server.base_url, timeout=30.0)
        running.append((server, http))
        return Gateway(server.base_url, settings, app.state.services, http)

    yield start
    for server, http in running:
        await http.aclose()
        await server.stop()
