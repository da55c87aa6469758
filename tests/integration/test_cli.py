"""The ``gateway`` command as an operator runs it: a real process against the test database."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.auth.keys import hash_key
from gateway.config import default_migrations_dir
from gateway.sealing import SecretBox
from gateway.storage.channels import SECRET_PURPOSE
from gateway.storage.migrations import load_migrations
from gateway.storage.servers import Servers
from tests.api.console_helpers import sign_in
from tests.processes import free_port
from tests.support import BOX, SEALING_KEY


async def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env={
            **os.environ,
            "GATEWAY_LOG__FORMAT": "json",
            "GATEWAY_RELAY__SEALING_KEY": SEALING_KEY,
            **env,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def _env(database_url: str, servers: Servers, tmp_path: Path, **more: str) -> dict[str, str]:
    """The settings of a gateway command on the test's stores, and ``more`` of them."""
    return {
        "GATEWAY_DATABASE__URL": database_url,
        "GATEWAY_REDIS__URL": servers.redis_url,
        "GATEWAY_DATA_DIR": str(tmp_path),
        **more,
    }


async def _gateway(
    database_url: str, servers: Servers, tmp_path: Path, *args: str
) -> dict[str, Any]:
    env = _env(database_url, servers, tmp_path)
    code, stdout, stderr = await _run(env, *args)
    assert code == 0, stderr
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


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
            user["id"],
        )
        assert row is not None
        assert row["balance_units"] == 250_000
        assert row["quota_remaining_units"] == 100_000
        assert row["allowed_actions"] == ["mj_imagine"]
        assert (row["requests_per_minute"], row["max_open_tasks"]) == (30, 4)
        assert bytes(row["key_hash"]) == hash_key(key["key"])
        ledger = await conn.fetchval(
            "SELECT sum(amount_units) FROM ledger WHERE user_id = $1", user["id"]
        )
        assert ledger == 250_000
        stored = await conn.fetchrow(
            "SELECT base_url, secret, secret_sealed, weight, modes FROM channels WHERE id = $1",
            channel["id"],
        )
        assert stored is not None
        box = BOX
        assert box.open(stored["secret_sealed"], SECRET_PURPOSE) == "s3"
        assert dict(stored) | {"secret_sealed": None} == {
            "base_url": "http://127.0.0.1:9",
            "secret": None,
            "secret_sealed": None,
            "weight": 4,
            "modes": ["FAST", "RELAX"],
        }
        assert "s3" not in json.dumps(channel)

        await gateway("admin", "key-revoke", str(key["keyId"]))
        revoked = await conn.fetchval(
            "SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = $1", key["keyId"]
        )
        assert revoked
    finally:
        await conn.close()


async def test_admin_commands_list_edit_and_search_without_showing_secrets(
    database_url: str, servers: Servers, tmp_path: Path
) -> None:
    env = _env(database_url, servers, tmp_path, GATEWAY_LOG__LEVEL="DEBUG")
    printed: list[str] = []

    async def gateway(*args: str) -> Any:
        code, stdout, stderr = await _run(env, "admin", *args)
        assert code == 0, stderr
        printed.append(stdout + stderr)
        return json.loads(stdout.splitlines()[-1])

    await gateway("user-create", "ivo", "--balance", "300000")
    await gateway("user-create", "jun")
    key = await gateway("key-create", "--user", "ivo", "--name", "ci")
    printed.pop()  # the one output that shows the key
    channel = await gateway("channel-add", "up", "http://127.0.0.1:9", "--secret", "cli-secret-9")
    assert channel["hasSecret"] is True

    users = await gateway("user-list")
    assert [u["name"] for u in users["users"]] == ["jun", "ivo"]
    assert (await gateway("user-list", "--name-prefix", "i", "--limit", "1"))["users"][0][
        "keys"
    ] == 1
    assert (await gateway("user-disable", "ivo"))["enabled"] is False
    assert (await gateway("user-show", "ivo"))["enabled"] is False
    assert (await gateway("user-enable", "ivo"))["enabled"] is True
    limited = await gateway("user-limits", "ivo", "--rpm", "60")
    assert (limited["requestsPerMinute"], limited["maxOpenTasks"]) == (60, None)
    keyed = await gateway("key-rate-limits", str(key["keyId"]), "--max-open-tasks", "2")
    assert (keyed["requestsPerMinute"], keyed["maxOpenTasks"]) == (None, 2)
    keys = (await gateway("key-list", "--user", "ivo"))["keys"]
    assert keys[0]["maxOpenTasks"] == 2
    assert [(k["id"], k["name"]) for k in keys] == [(key["keyId"], "ci")]

    edited = await gateway(
        "channel-edit", "up", "--rename", "up-1", "--weight", "5", "--modes", "FAST",
        "--max-in-flight", "30", "--secret", "cli-secret-10",
    )  # fmt: skip
    assert (edited["name"], edited["weight"], edited["modes"]) == ("up-1", 5, ["FAST"])
    assert edited["maxInFlight"] == 30
    lifted = await gateway("channel-edit", "up-1", "--no-max-in-flight", "--no-secret")
    assert (lifted["maxInFlight"], lifted["hasSecret"]) == (None, False)
    assert (await gateway("channel-disable", "up-1"))["enabled"] is False
    assert (await gateway("channel-enable", "up-1"))["enabled"] is True
    (listed,) = (await gateway("channel-list"))["channels"]
    assert (listed["name"], listed["state"]) == ("up-1", "up")
    tested = await gateway("channel-test", "up-1")
    assert tested["ok"] is False
    assert tested["detail"].startswith("unreachable")

    conn = await asyncpg.connect(database_url)
    try:
        task_id = await conn.fetchval(
            "INSERT INTO tasks (user_id, api_key_id, channel_id, action, price_action, mode,"
            " price_units, status, submit_time_ms)"
            " VALUES ($1, $2, $3, 'IMAGINE', 'mj_imagine', 'FAST', 0, 'SUCCESS', 1) RETURNING id",
            users["users"][1]["id"],
            key["keyId"],
            channel["id"],
        )
    finally:
        await conn.close()
    found = await gateway("tasks", "--user", "ivo", "--channel", "up-1", "--status", "SUCCESS")
    assert [t["id"] for t in found["tasks"]] == [task_id]
    assert (await gateway("tasks", "--user", "jun"))["tasks"] == []
    entries = (await gateway("ledger", "--user", "ivo", "--kind", "TOPUP"))["entries"]
    assert [(e["kind"], e["amountUnits"]) for e in entries] == [("TOPUP", 300_000)]
    assert (await gateway("ledger", "--user", "jun"))["entries"] == []

    secret_file = tmp_path / "channel.secret"
    secret_file.write_text("cli-secret-11\n")
    await gateway("channel-edit", "up-1", "--secret-file", str(secret_file))
    env["GATEWAY_RELAY__SEALING_KEY"] = "a-new-sealing-key-for-this-test"
    env["GATEWAY_RELAY__SEALING_OLD_KEYS"] = json.dumps([SEALING_KEY])
    assert (await gateway("channel-list"))["channels"][0]["hasSecret"] is True
    assert await gateway("sealing-key-rotate") == {"resealed": 1}
    conn = await asyncpg.connect(database_url)
    try:
        sealed = await conn.fetchval("SELECT secret_sealed FROM channels")
    finally:
        await conn.close()
    assert SecretBox(b"a-new-sealing-key-for-this-test").open(sealed, SECRET_PURPOSE) == (
        "cli-secret-11"
    )
    env["GATEWAY_RELAY__SEALING_KEY"] = "yet-another-sealing-key-unknown"
    del env["GATEWAY_RELAY__SEALING_OLD_KEYS"]
    code, _, stderr = await _run(env, "admin", "sealing-key-rotate")
    assert (code, "does not open" in stderr) == (2, True)
    env["GATEWAY_RELAY__SEALING_KEY"] = ""
    code, _, stderr = await _run(env, "admin", "channel-edit", "up-1", "--weight", "2")
    assert (code, "set GATEWAY_RELAY__SEALING_KEY" in stderr) == (2, True)

    output = "\n".join(printed)
    for secret in ("cli-secret-9", "cli-secret-10", "cli-secret-11", key["key"]):
        assert secret not in output
    code, _, stderr = await _run(env, "admin", "channel-edit", "nope", "--weight", "2")
    assert (code, "no channel nope" in stderr) == (2, True)


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


async def test_migrate_seals_channel_secrets_kept_in_plaintext(
    database_url: str, servers: Servers, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO channels (name, base_url, secret, callback_token)"
            " VALUES ('old', 'http://127.0.0.1:9', 'plain-secret', 't')"
        )
        await _gateway(database_url, servers, tmp_path, "migrate")
        row = await conn.fetchrow("SELECT secret, secret_sealed FROM channels")
    finally:
        await conn.close()
    assert row is not None
    assert row["secret"] is None
    box = BOX
    assert box.open(row["secret_sealed"], SECRET_PURPOSE) == "plain-secret"


@pytest.mark.skipif(shutil.which("wrk") is None, reason="gateway bench drives its load with wrk")
async def test_bench_measures_every_phase(servers: Servers, tmp_path: Path) -> None:
    env = _env(servers.database_url, servers, tmp_path)
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
    rows = [line.split() for line in stdout.splitlines() if " ".join(line.split()[:2]) in phases]
    # name, rate, (share), p50, p99, errors (2), wrk's cores, the answering server's CPU per request
    assert [len(row) for row in rows] == [10 if row[0] == "gateway" else 9 for row in rows]
    cpu_ms = [float(row[-1]) for row in rows]
    assert all(0 < ms < 100 for ms in cpu_ms)
    for call in ("submit", "fetch"):  # each gateway phase against its upstream phase
        (row,) = [line for line in stdout.splitlines() if line.startswith(f"gateway {call} ")]
        share = rates[f"gateway {call}"] / rates[f"upstream {call}"]
        assert float(row.split()[3]) == pytest.approx(share, abs=0.006)
        assert f"target: gateway {call} >= " in stdout


@pytest.mark.skipif(shutil.which("wrk") is None, reason="gateway bench drives its load with wrk")
async def test_bench_mixed_reads_the_workers_memory_along_the_run(
    servers: Servers, tmp_path: Path
) -> None:
    env = _env(servers.database_url, servers, tmp_path)
    code, stdout, stderr = await _run(
        env, "bench", "--mixed", "--duration", "2", "--concurrency", "8", "--workers", "1"
    )

    assert code == 0, stderr
    (row,) = [line for line in stdout.splitlines() if line.startswith("gateway mixed ")]
    assert float(row.split()[2]) > 0
    assert "0 (0.00%)" in row
    (memory,) = [line for line in stdout.splitlines() if line.startswith("worker 1 resident")]
    readings = [float(mb) for mb in memory.split(":")[1].split()]
    assert len(readings) >= 2  # at the start and at the end
    assert all(20 < mb < 2000 for mb in readings)
    assert "target: every worker stays under 200 MB: " in stdout


async def test_bench_open_tasks_measures_the_poll_lag_and_cpu(
    servers: Servers, tmp_path: Path
) -> None:
    env = _env(servers.database_url, servers, tmp_path, GATEWAY_RELAY__POLL_INTERVAL_S="0.5")
    code, stdout, stderr = await _run(
        env, "bench", "--open-tasks", "200", "--duration", "2", "--workers", "1"
    )

    assert code == 0, stderr
    assert "200 imagines open on 4 simulator channels" in stdout
    (asked,) = [line for line in stdout.splitlines() if line.startswith("tasks asked about")]
    assert float(asked.split()[-1].removesuffix("/s").replace(",", "")) > 0
    (lag,) = [line for line in stdout.splitlines() if line.startswith("poll lag")]
    p50, p95 = (float(part.split()[-2]) for part in lag.split(","))
    assert 0 < p50 <= p95 < 60
    assert "target: poll lag p95 <= 2 x the interval (1 s): " in stdout


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
    await gateway("admin", "key-limit", str(key["keyId"]), "250")
    assert (topup["applied"], topup["balanceUnits"]) == (True, 1500)
    assert (again["applied"], again["balanceUnits"]) == (False, 1500)
    assert adjust["balanceUnits"] == 1300
    await gateway("admin", "price-set", "mj_imagine", "120000")
    await gateway("admin", "mode-ratio-set", "TURBO", "30000")
    await gateway("admin", "group-set", "vip", "5000", "--description", "half price")
    await gateway("admin", "user-group", "hana", "vip")
    book = await gateway("admin", "prices")
    assert book["pricesUnits"]["mj_imagine"] == 120_000
    assert book["modeRatiosBp"]["TURBO"] == 30_000
    assert [(g["name"], g["ratioBp"]) for g in book["groups"]] == [
        ("default", 10_000),
        ("vip", 5_000),
    ]

    env = _env(database_url, servers, tmp_path)
    code, stdout, _ = await _run(env, "reconcile")
    assert code == 0, stdout
    assert '"ok": true' in stdout
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE api_keys SET quota_remaining_units = 1 WHERE id = $1", key["keyId"]
        )
    finally:
        await conn.close()
    code, stdout, _ = await _run(env, "reconcile")
    assert code == 1
    assert '"key_limits": 1' in stdout


async def test_bench_latency_reports_callbacks_and_polling(
    servers: Servers, tmp_path: Path
) -> None:
    env = _env(servers.database_url, servers, tmp_path)
    code, stdout, stderr = await _run(env, "bench", "--latency", "--tasks", "3")

    assert code == 0, stderr
    rows = {line[:16].strip(): line.split()[-3:] for line in stdout.splitlines()[-2:]}
    assert set(rows) == {"with callbacks", "polling only"}
    assert all(int(value) >= 0 for values in rows.values() for value in values)


async def test_demo_prints_console_logins_that_sign_in(
    database_url: str, servers: Servers, tmp_path: Path, redis_prefix: str
) -> None:
    """The first command a newcomer runs shows the console's URL and two logins that work: the
    customer's pages for the customer, the operator's for the operator."""
    port, simulator_port = free_port(), free_port()
    env = {
        **os.environ,
        "GATEWAY_DATABASE__URL": database_url,
        "GATEWAY_REDIS__URL": servers.redis_url,
        "GATEWAY_REDIS__KEY_PREFIX": redis_prefix,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_RELAY__SEALING_KEY": SEALING_KEY,
        "GATEWAY_SERVER__PORT": str(port),
        "GATEWAY_SIMULATOR__PORT": str(simulator_port),
        "GATEWAY_LOG__LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "demo",
        env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        printed = ""
        while "Press Ctrl+C" not in printed:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            assert line, printed
            printed += line.decode()
        base = f"http://127.0.0.1:{port}"
        assert f"Console:   {base}/console" in printed
        logins = dict(re.findall(r"(?:customer|operator)\s+(\S+) / (\S+)", printed))
        assert set(logins) == {"demo", "operator"}
        for name, operator_page in (("demo", 403), ("operator", 200)):
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                await sign_in(http, name, logins[name])
                assert (await http.get("/console/keys")).status_code == 200
                assert (await http.get("/console/admin/users")).status_code == operator_page
    finally:
        process.terminate()
        await process.wait()


async def test_user_invite_prints_a_link_that_sets_a_password_and_may_make_an_operator(
    database_url: str, servers: Servers, tmp_path: Path
) -> None:
    async def gateway(*args: str) -> dict[str, Any]:
        return await _gateway(database_url, servers, tmp_path, *args)

    await gateway("admin", "user-create", "olga")
    invited = await gateway("admin", "user-invite", "olga", "--operator")
    assert invited["operator"] is True
    link = invited["invitation"]
    assert "/console/invite/" in link
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT operator, password_hash FROM users WHERE id = $1", invited["userId"]
        )
        assert row is not None
        assert (row["operator"], row["password_hash"]) == (True, None)
        token = link.rsplit("/", 1)[1]
        stored = await conn.fetchval("SELECT token_hash FROM console_invitations")
        assert bytes(stored) == hashlib.sha256(token.encode()).digest()  # the token is not kept
    finally:
        await conn.close()
