"""The embedded fallback: a private PostgreSQL and Redis start, serve, and stop."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import psutil
import pytest

from gateway.config import Settings
from gateway.storage import embedded
from gateway.storage.redis import create_redis
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
