"""The embedded fallback: a private PostgreSQL and Redis start, serve, and stop."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import psutil
import pytest

from gateway.config import Settings
from gateway.console.sessions import SIGN_IN_WINDOW_S, SignInLimits
from gateway.storage import embedded
from gateway.storage.redis import create_redis
from gateway.storage.redis_keys import RedisKeys
from gateway.storage.servers import open_servers


async def test_embedded_postgres_and_redis_start_connect_and_stop(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database={"url": None}, redis={"url": None})
    with open_servers(settings) as servers:
        assert servers.database_kind == "embedded"
        assert servers.redis_kind == "embedded"
        conn = await asyncpg.connect(servers.database_url)
        try:
            assert await conn.fetchval("SELECT current_database()") == embedded.EMBEDDED_DATABASE
            await conn.execute("CREATE TABLE kept (v TEXT)")
            await conn.execute("INSERT INTO kept VALUES ('survives a restart')")
        finally:
            await conn.close()
        client = create_redis(servers.redis_url)
        try:
            await client.set("k", "v")
            assert await client.get("k") == b"v"
        finally:
            await client.aclose()
        postmaster_pid = int((tmp_path / "postgres" / "postmaster.pid").read_text().split()[0])
        assert psutil.pid_exists(postmaster_pid)
    assert (
        not psutil.pid_exists(postmaster_pid) or psutil.Process(postmaster_pid).status() == "zombie"
    )

    with open_servers(settings) as servers:
        conn = await asyncpg.connect(servers.database_url)
        try:
            assert await conn.fetchval("SELECT v FROM kept") == "survives a restart"
        finally:
            await conn.close()


def test_configured_urls_start_nothing(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database={"url": "postgresql://user:pw@db.example:5432/gw"},
        redis={"url": "redis://cache.example:6379/0"},
    )
    with open_servers(settings) as servers:
        assert servers.database_kind == "external"
        assert servers.database_url == "postgresql://user:pw@db.example:5432/gw"
        assert servers.redis_kind == "external"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://user:secret@h:5432/db", "postgresql://user:***@h:5432/db"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("unix:///tmp/r.sock", "unix:///tmp/r.sock"),
    ],
)
def test_urls_are_logged_without_passwords(url: str, shown: str) -> None:
    from gateway.storage.servers import redact_url

    assert redact_url(url) == shown


async def test_the_console_sign_in_limits_work_on_the_embedded_redis(tmp_path: Path) -> None:
    """The embedded Redis is older (6.2) than most servers: what the console asks of it works
    there too. A failed sign-in opens a window of one minute, counted from the first."""
    settings = Settings(
        data_dir=tmp_path, database={"url": "postgresql://unused.example/gw"}, redis={"url": None}
    )
    with open_servers(settings) as servers:
        assert servers.redis_kind == "embedded"
        client = create_redis(servers.redis_url)
        try:
            limits = SignInLimits(client, RedisKeys("t:"), attempts=3)
            for _ in range(2):
                await limits.failed("ann", "10.0.0.1")
            assert not await limits.refused("ann", "10.0.0.1")
            await limits.failed("ann", "10.0.0.1")
            assert await limits.refused("ann", "10.0.0.1")
            assert await limits.refused("someone else", "10.0.0.1")  # the address, too
            keys = [key async for key in client.scan_iter(match="t:console:sign-in:*")]
            assert len(keys) == 2
            for key in keys:
                assert 0 < await client.ttl(key) <= SIGN_IN_WINDOW_S
        finally:
            await client.aclose()
