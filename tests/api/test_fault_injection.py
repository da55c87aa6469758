"""A fault-injection run: thousands of random submits and follow-ups through two gateway
processes, against simulator channels that inject every failure kind and lose answers
mid-flight, with one gateway killed and restarted in the middle. Afterwards every balance is
exactly what the tasks that ended SUCCESS cost, and the reconciliation passes."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from gateway import admin
from gateway.domain import KeySettings
from tests.api.helpers import RED
from tests.conftest import SIMULATOR_SECRET, StartSimulator
from tests.processes import StartGatewayProcess, reconcile
from tests.support import BOX

OPERATIONS = 3000
WORKERS = 32
KILL_AT, RESTART_AT = 1000, 1600
USERS = 10
IMAGINE_UNITS = 100_000
SETTLE_TIMEOUT_S = 90.0
OPEN_STATUSES = ("SUBMITTING", "NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS")
FAULTS = {
    "http_401": 0.005,
    "http_500": 0.03,
    "not_json": 0.03,
    "drop_connection": 0.03,
    "slow": 0.03,  # answered after the gateway gave up: the answer is lost mid-flight
    "banned": 0.03,
    "no_account": 0.005,
    "queue_full": 0.03,
    "system_error": 0.03,
    "fail_banned": 0.04,
    "fail_invalid": 0.04,
    "stall": 0.02,
    "forget": 0.02,
    "slow_answer_s": 2.0,
}
GATEWAY_ENV = {
    "GATEWAY_UPSTREAM__SUBMIT_TIMEOUT_S": "1",
    "GATEWAY_UPSTREAM__CONNECT_TIMEOUT_S": "0.5",
    "GATEWAY_UPSTREAM__COOLDOWN_S": "1",
    "GATEWAY_RELAY__HOLD_DEADLINE_S": "6",
    "GATEWAY_RELAY__TASK_TIMEOUT_S": "15",
    "GATEWAY_RELAY__FORGOTTEN_AFTER_POLLS": "3",
    "GATEWAY_RELAY__POLL_INTERVAL_S": "0.1",
}


@dataclass
class Account:
    user_id: int
    key: str
    start_units: int
    key_limit_units: int | None
    accepted: list[str] = field(default_factory=list)  # task ids the client was given


@dataclass
class Run:
    accounts: list[Account]
    gateways: list[httpx.AsyncClient]
    rng: random.Random
    done: int = 0
    answers: dict[str, int] = field(default_factory=dict)  # "HTTP status/code" -> count
    unreachable: int = 0
    down: set[int] = field(default_factory=set)  # indexes of gateways killed

    def count(self, label: str) -> None:
        self.answers[label] = self.answers.get(label, 0) + 1


async def _operation(run: Run) -> None:
    account = run.rng.choice(run.accounts)
    gateway_index = run.rng.randrange(len(run.gateways))
    http = run.gateways[gateway_index]
    headers = {"Authorization": f"Bearer {account.key}"}
    path, body = await _choose(run, account, http, headers)
    try:
        answer = await http.post(path, json=body, headers=headers)
    except httpx.TransportError:
        run.unreachable += 1
        assert gateway_index in run.down, "a running gateway did not answer"
        return
    payload: dict[str, Any] = answer.json()
    run.count(f"{answer.status_code}/{payload['code']}")
    if payload["code"] == 1:
        account.accepted.append(payload["result"])
    else:
        assert payload["result"] is None or payload["code"] == 21, payload


async def _choose(
    run: Run, account: Account, http: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """An imagine (most), a describe, or an upscale/variation of a finished grid."""
    roll = run.rng.random()
    if roll < 0.3 and account.accepted:
        parent = run.rng.choice(account.accepted)
        try:
            task = (await http.get(f"/mj/task/{parent}/fetch", headers=headers)).json()
        except httpx.TransportError:
            task = {}
        buttons = [b["customId"] for b in task.get("buttons") or [] if "::1::" in b["customId"]]
        if task.get("status") == "SUCCESS" and buttons:
            custom_id = run.rng.choice(buttons)
            return "/mj/submit/action", {"taskId": parent, "customId": custom_id}
    if roll < 0.4:
        return "/mj/submit/describe", {"base64": RED}
    return "/mj/submit/imagine", {"prompt": f"a lantern {run.rng.randrange(10**6)}"}


async def _worker(run: Run, kill: asyncio.Event, restart: asyncio.Event) -> None:
    while run.done < OPERATIONS:
        run.done += 1
        if run.done == KILL_AT:
            kill.set()
        if run.done == RESTART_AT:
            restart.set()
        await _operation(run)


async def _wait_until_settled(pool: asyncpg.Pool) -> None:
    deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT_S
    while asyncio.get_running_loop().time() < deadline:
        still_open = await pool.fetchval(
            "SELECT (SELECT count(*) FROM tasks WHERE status = ANY($1::TEXT[]))"
            " + (SELECT count(*) FROM holds WHERE status = 'OPEN')",
            list(OPEN_STATUSES),
        )
        if still_open == 0:
            return
        await asyncio.sleep(0.5)
    raise AssertionError("tasks or holds still open after the run")


async def test_fault_injection_run_leaves_every_balance_exact(
    gateway_process_factory: StartGatewayProcess,
    simulator_factory: StartSimulator,
    db_pool: asyncpg.Pool,
    database_url: str,
    tmp_path: Path,
) -> None:
    rng = random.Random(20261202)
    for n in range(3):
        simulator = await simulator_factory(
            accounts=3, speed_factor=100.0, task_timeout_s=300.0, seed=n, faults=FAULTS
        )
        await admin.add_channel(
            db_pool,
            BOX,
            f"sim{n}",
            simulator.base_url,
            admin.ChannelChanges(secret=SIMULATOR_SECRET),
        )
    accounts = []
    for n in range(USERS):
        start_units = rng.randrange(20, 200) * IMAGINE_UNITS
        user_id = await admin.create_user(db_pool, f"user{n}", start_units)
        quota = rng.randrange(10, 80) * IMAGINE_UNITS if n % 2 else None
        key = (await admin.issue_key(db_pool, user_id, KeySettings(quota_units=quota))).key
        accounts.append(Account(user_id, key, start_units, quota))
    first = await gateway_process_factory(**GATEWAY_ENV)
    second = await gateway_process_factory(**GATEWAY_ENV)
    kill, restart = asyncio.Event(), asyncio.Event()

    async def crash_and_come_back() -> None:
        await kill.wait()
        run.down.add(0)
        await first.kill()
        await restart.wait()
        await first.start()
        run.down.discard(0)

    async with (
        httpx.AsyncClient(base_url=first.base_url, timeout=30) as a,
        httpx.AsyncClient(base_url=second.base_url, timeout=30) as b,
    ):
        run = Run(accounts, [a, b], rng)
        crash = asyncio.create_task(crash_and_come_back())
        await asyncio.gather(*(_worker(run, kill, restart) for _ in range(WORKERS)))
        await crash
    await _wait_until_settled(db_pool)

    # Over new connections: the run's sat idle while the tasks settled, and a server closes an
    # idle keep-alive connection after a few seconds, which may be just as it is taken again.
    async with httpx.AsyncClient(base_url=second.base_url, timeout=30) as client:
        for account in accounts:
            shown = await asyncio.gather(
                *(
                    client.get(
                        f"/mj/task/{task_id}/fetch",
                        headers={"Authorization": f"Bearer {account.key}"},
                    )
                    for task_id in account.accepted
                )
            )
            assert all(r.status_code == 200 for r in shown)
            assert {r.json()["status"] for r in shown} <= {"SUCCESS", "FAILURE"}

    for account in accounts:
        delivered = await db_pool.fetchval(
            "SELECT coalesce(sum(price_units), 0) FROM tasks"
            " WHERE user_id = $1 AND status = 'SUCCESS'",
            account.user_id,
        )
        balance = await db_pool.fetchval(
            "SELECT balance_units FROM users WHERE id = $1", account.user_id
        )
        assert balance == account.start_units - delivered, account
        key_left = await db_pool.fetchval(
            "SELECT quota_remaining_units FROM api_keys WHERE user_id = $1", account.user_id
        )
        if account.key_limit_units is not None:
            assert key_left == account.key_limit_units - delivered, account
        handed_out = {int(task_id) for task_id in account.accepted}
        recorded = await db_pool.fetch(
            "SELECT id FROM tasks WHERE user_id = $1 AND status <> 'REJECTED'", account.user_id
        )
        assert handed_out <= {row["id"] for row in recorded}

    code, report = await reconcile(database_url, tmp_path)
    assert code == 0, report

    refunds = await db_pool.fetchval("SELECT count(*) FROM ledger WHERE kind = 'REFUND'")
    released = await db_pool.fetchval("SELECT count(*) FROM holds WHERE status = 'RELEASED'")
    assert run.unreachable > 0
    assert refunds > 0
    assert released > 0
    assert run.answers.get("200/1", 0) > 200
    assert run.answers.get("403/25", 0) > 0  # balances and key limits ran out
    assert sum(v for k, v in run.answers.items() if k.endswith("/23")) > 0
