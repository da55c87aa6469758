"""The ``gateway`` command as an operator runs it: a real process against the test database."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from gateway.auth.keys import hash_key
from gateway.storage.servers import Servers


def _gateway(database_url: str, servers: Servers, tmp_path: Path, *args: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "GATEWAY_DATABASE__URL": database_url,
        "GATEWAY_REDIS__URL": servers.redis_url,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_LOG__FORMAT": "json",
    }
    done = subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return ast.literal_eval(lines[-1]) if lines else {}


async def test_admin_commands_bootstrap_a_working_setup(
    database_url: str, servers: Servers, tmp_path: Path
) -> None:
    user = _gateway(
        database_url, servers, tmp_path, "admin", "user-create", "carol", "--balance", "250000"
    )
    key = _gateway(
        database_url,
        servers,
        tmp_path,
        "admin",
        "key-create",
        "--user",
        "carol",
        "--quota",
        "100000",
        "--actions",
        "mj_imagine",
    )
    channel = _gateway(
        database_url,
        servers,
        tmp_path,
        "admin",
        "channel-add",
        "up-1",
        "http://127.0.0.1:9",
        "--secret",
        "s3",
        "--weight",
        "4",
        "--modes",
        "FAST,RELAX",
    )
    assert key["key"].startswith("sk-")
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT u.balance_units, k.quota_remaining_units, k.allowed_actions, k.key_hash"
            " FROM users u JOIN api_keys k ON k.user_id = u.id WHERE u.id = $1",
            user["user_id"],
        )
        assert row["balance_units"] == 250_000
        assert row["quota_remaining_units"] == 100_000
        assert row["allowed_actions"] == ["mj_imagine"]
        assert bytes(row["key_hash"]) == hash_key(key["key"])
        ledger = await conn.fetchval(
            "SELECT sum(amount_units) FROM ledger WHERE user_id = $1", user["user_id"]
        )
        assert ledger == 250_000
        stored = await conn.fetchrow(
            "SELECT base_url, secret, weight, modes FROM channels WHERE id = $1",
            channel["channel_id"],
        )
        assert dict(stored) == {
            "base_url": "http://127.0.0.1:9",
            "secret": "s3",
            "weight": 4,
            "modes": ["FAST", "RELAX"],
        }

        _gateway(database_url, servers, tmp_path, "admin", "key-revoke", str(key["key_id"]))
        revoked = await conn.fetchval(
            "SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = $1", key["key_id"]
        )
        assert revoked
    finally:
        await conn.close()


async def test_admin_errors_are_reported_not_raised(
    database_url: str, servers: Servers, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "GATEWAY_DATABASE__URL": database_url,
        "GATEWAY_REDIS__URL": servers.redis_url,
    }
    done = subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [sys.executable, "-m", "gateway", "admin", "key-create", "--user", "nobody"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "no user nobody" in done.stderr


async def test_migrate_command_is_idempotent(
    empty_database_url: str, servers: Servers, tmp_path: Path
) -> None:
    _gateway(empty_database_url, servers, tmp_path, "migrate")
    _gateway(empty_database_url, servers, tmp_path, "migrate")
    conn = await asyncpg.connect(empty_database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 1
    finally:
        await conn.close()
