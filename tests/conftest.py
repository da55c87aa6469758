"""Fixtures shared by every test: real servers only.

PostgreSQL and Redis are the servers named by ``GATEWAY_TEST_DATABASE_URL`` and
``GATEWAY_TEST_REDIS_URL`` when set, else embedded ones started for the session. Each test gets
its own database, cloned from a migrated template, and its own Redis key prefix. The simulator
runs in-process on the test's event loop, on a free loopback port, fast.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from gateway.config import DatabaseSettings, Settings, SimulatorSettings
from gateway.storage.database import create_pool
from gateway.storage.migrations import apply_migrations, default_migrations_dir
from gateway.storage.redis import create_redis
from gateway.storage.servers import Servers, open_servers
from tests.support import with_database

if TYPE_CHECKING:
    from gateway.simulator import RunningSimulator

_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The PostgreSQL and Redis of this test session (configured, or embedded in a temp dir)."""
    settings = Settings(
        data_dir=Path(os.environ.get("GATEWAY_TEST_DATA_DIR") or tmp_path_factory.mktemp("data")),
        database={"url": os.environ.get("GATEWAY_TEST_DATABASE_URL") or None},
        redis={"url": os.environ.get("GATEWAY_TEST_REDIS_URL") or None},
    )
    with open_servers(settings) as resolved:
        yield resolved


@pytest.fixture(scope="session")
async def template_database(servers: Servers) -> AsyncIterator[str]:
    """Name of a database migrated to the latest version, cloned by every test."""
    name = f"gw_template_{os.getpid()}"
    admin = await asyncpg.connect(servers.database_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(with_database(servers.database_url, name))
        try:
            await apply_migrations(conn, default_migrations_dir())
        finally:
            await conn.close()
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _fresh_database(servers: Servers, template: str) -> AsyncIterator[str]:
    name = f"gw_test_{os.getpid()}_{next(_database_numbers)}"
    admin = await asyncpg.connect(servers.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        yield with_database(servers.database_url, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


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

StartSimulator = Callable[..., Awaitable["RunningSimulator"]]


@pytest.fixture
async def simulator_factory() -> AsyncIterator[StartSimulator]:
    """Start simulators with per-test settings; every one is stopped after the test.

    Defaults: port 0, secret ``SIMULATOR_SECRET``, speed factor 1000, seed 1. Keyword arguments
    override any ``SimulatorSettings`` field (``faults`` takes a dict or a ``SimulatorFaults``).
    """
    from gateway.simulator import start_simulator

    running: list[RunningSimulator] = []

    async def start(**overrides: Any) -> RunningSimulator:
        fields: dict[str, Any] = {
            "port": 0,
            "secret": SecretStr(SIMULATOR_SECRET),
            "speed_factor": 1000.0,
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
