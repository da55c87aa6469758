"""The ``gateway`` command as an operator runs it: a real process against the test database."""

from __future__ import annotations

import ast
import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.auth.keys import hash_key
from gateway.config import default_migrations_dir
from gateway.storage.migrations import load_migrations
from gateway.storage.servers import Servers


async def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env={**os.environ, "GATEWAY_LOG__FORMAT": "json", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def _gateway(
    database_url: str, servers: Servers, tmp_path: Path, *args: str
) -> dict[str, Any]:
    env = {
        "GATEWAY_DATABASE__URL": database_url,
        "GATEWAY_REDIS__URL": servers.redis_url,
        "GATEWAY_DATA_DIR": str(tmp_path),
    }
    code, stdout, stderr = await _run(env, *args)
    assert code == 0, stderr
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return ast.literal_eval(lines[-1]) if lines else {}


async def test_admin_commands_bootstrap_a_working_setup(
    database_url: str, servers: Servers, tmp_path: Path
) -> None:
    async def gateway(*args: str) -> dict[str, Any]:
        return await _gateway(database_url, servers, tmp_path, *args)

    user = await gateway("admin", "user-create", "carol", "--balance", "250000")
    key = await gateway(
        "admin", "key-create", "--user", "carol", "--quota", "100000", "--actions", "mj_imagine",
        "--rpm", "30", "--max-open-tasks", "4",
    )  # fmt: skip
    channel = await gateway(
        "admin", "channel-add", "up-1", "http://127.0.0.1:9", "--secret", "s3", "--weight", "4",
        "--modes", "FAST,RELAX",
    )  # fmt: skip
    assert key["key"].startswith("sk-")
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT u.balance_units, k.quota_remaining_units, k.allowed_actions, k.key_hash,"
            " k.requests_per_minute, k.max_open_tasks"
            " FROM users u JOIN api_keys k ON k.user_id = u.id WHERE u.id = $1",
            user["user_id"],
        )
        assert row is not None
        assert row["balance_units"] == 250_000
        assert row["quota_remaining_units"] == 100_000
        assert row["allowed_actions"] == ["mj_imagine"]
        assert (row["requests_per_minute"], row["max_open_tasks"]) == (30, 4)
        assert bytes(row["key_hash"]) == hash_key(key["key"])
        ledger = await conn.fetchval(
            "SELECT sum(amount_units) FROM ledger WHERE user_id = $1", user["user_id"]
        )
        assert ledger == 250_000
        stored = await conn.fetchrow(
            "SELECT base_url, secret, weight, modes FROM channels WHERE id = $1",
            channel["channel_id"],
        )
        assert stored is not None
        assert dict(stored) == {
            "base_url": "http://127.0.0.1:9",
            "secret": "s3",
            "weight": 4,
            "modes": ["FAST", "RELAX"],
        }

        await gateway("admin", "key-revoke", str(key["key_id"]))
        revoked = await conn.fetchval(
            "SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = $1", key["key_id"]
        )
        assert revoked
    finally:
        await conn.close()


async def test_admin_errors_are_reported_not_raised(database_url: str, servers: Servers) -> None:
    code, _, stderr = await _run(
        {"GATEWAY_DATABASE__URL": database_url, "GATEWAY_REDIS__URL": servers.redis_url},
        *("admin", "key-create", "--user", "nobody"),
    )
    assert code == 2
    assert "no user nobody" in stderr


async def test_migrate_command_is_idempotent(
    empty_database_url: str, servers: Servers, tmp_path: Path
) -> None:
    await _gateway(empty_database_url, servers, tmp_path, "migrate")
    await _gateway(empty_database_url, servers, tmp_path, "migrate")
    conn = await asyncpg.connect(empty_database_url)
    try:
        applied = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert applied == len(load_migrations(default_migrations_dir()))
    finally:
        await conn.close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="gateway bench drives its load with wrk")
async def test_bench_measures_every_phase(servers: Servers, tmp_path: Path) -> None:
    env = {
        "GATEWAY_DATABASE__URL": servers.database_url,
        "GATEWAY_REDIS__URL": servers.redis_url,
        "GATEWAY_DATA_DIR": str(tmp_path),
    }
    code, stdout, stderr = await _run(
        env, "bench", "--duration", "1", "--concurrency", "8", "--workers", "1"
    )

    assert code == 0, stderr
    rates = {
        " ".join(line.split()[:2]): float(line.split()[2])
        for line in stdout.splitlines()
        if line.startswith(("gateway ", "upstream ")) and "(" in line
    }
    phases = {"gateway submit", "gateway fetch", "upstream submit", "upstream fetch"}
    assert set(rates) == phases
    assert all(rate > 0 for rate in rates.values())
    assert "0 (0.00%)" in stdout


async def test_money_commands_and_reconcile_exit_codes(
    database_url: str, servers: Servers, tmp_path: Path
) -> None:
    async def gateway(*args: str) -> dict[str, Any]:
        return await _gateway(database_url, servers, tmp_path, *args)

    await gateway("admin", "user-create", "hana", "--balance", "1000")
    key = await gateway("admin", "key-create", "--user", "hana", "--quota", "400")
    topup = await gateway("admin", "topup", "hana", "500", "--reason", "card", "--reference", "p1")
    again = await gateway("admin", "topup", "hana", "500", "--reason", "card", "--reference", "p1")
    adjust = await gateway("admin", "adjust", "hana", "-200", "--reason", "correction")
    await gateway("admin", "key-limit", str(key["key_id"]), "250")
    assert (topup["applied"], topup["balance_units"]) == (True, 1500)
    assert (again["applied"], again["balance_units"]) == (False, 1500)
    assert adjust["balance_units"] == 1300
    await gateway("admin", "price-set", "mj_imagine", "120000")
    await gateway("admin", "mode-ratio-set", "TURBO", "30000")
    await gateway("admin", "group-set", "vip", "5000", "--description", "half price")
    await gateway("admin", "user-group", "hana", "vip")
    book = await gateway("admin", "prices")
    assert book["prices_units"]["mj_imagine"] == 120_000
    assert book["mode_ratios_bp"]["TURBO"] == 30_000
    assert book["groups"] == {"default": 10_000, "vip": 5_000}

    env = {
        "GATEWAY_DATABASE__URL": database_url,
        "GATEWAY_REDIS__URL": servers.redis_url,
        "GATEWAY_DATA_DIR": str(tmp_path),
    }
    code, stdout, _ = await _run(env, "reconcile")
    assert code == 0, stdout
    assert '"ok": true' in stdout
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE api_keys SET quota_remaining_units = 1 WHERE id = $1", key["key_id"]
        )
    finally:
        await conn.close()
    code, stdout, _ = await _run(env, "reconcile")
    assert code == 1
    assert '"key_limits": 1' in stdout


async def test_bench_latency_reports_callbacks_and_polling(
    servers: Servers, tmp_path: Path
) -> None:
    env = {
        "GATEWAY_DATABASE__URL": servers.database_url,
        "GATEWAY_REDIS__URL": servers.redis_url,
        "GATEWAY_DATA_DIR": str(tmp_path),
    }
    code, stdout, stderr = await _run(env, "bench", "--latency", "--tasks", "3")

    assert code == 0, stderr
    rows = {line[:16].strip(): line.split()[-3:] for line in stdout.splitlines()[-2:]}
    assert set(rows) == {"with callbacks", "polling only"}
    assert all(int(value) >= 0 for values in rows.values() for value in values)
