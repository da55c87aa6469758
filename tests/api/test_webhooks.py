"""Client webhooks: every change, in order, signed, retried until delivered; no private targets
unless the operator allows them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import StartGateway, StartSimulator
from tests.support import until

START_UNITS = 1_000_000
FAST_RETRIES = {
    "webhook_allow_private": True,
    "webhook_backoff_s": 0.05,
    "webhook_poll_s": 0.02,
    "webhook_timeout_s": 0.5,
}
ORDER = {"NOT_START": 0, "SUBMITTED": 1, "IN_PROGRESS": 2, "SUCCESS": 3, "FAILURE": 3}


@dataclass
class Receiver:
    """A client's webhook endpoint: answers 500 to the first ``fail_first`` posts and hangs on
    the next ``hang_next`` ones, then 200; keeps every post it answered 200."""

    fail_first: int = 0
    hang_next: int = 0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    posts: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.posts += 1
        body = await request.read()
        if self.posts <= self.fail_first:
            return web.Response(status=500)
        if self.posts <= self.fail_first + self.hang_next:
            await asyncio.sleep(5)
        self.received.append((dict(request.headers), body))
        return web.Response(text="ok")

    def tasks(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    hook.url = f"http://127.0.0.1:{port}/hook"
    yield hook
    await runner.cleanup()


async def test_every_change_is_delivered_in_order_and_signed(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, receiver: Receiver
) -> None:
    receiver.fail_first, receiver.hang_next = 2, 1
    gateway = await gateway_factory(relay=FAST_RETRIES | {"poll_interval_s": 0.02})
    simulator = await simulator_factory(speed_factor=100.0)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)
    secret = (await client.get("/api/me")).json()["webhookSecret"]

    answer = await client.post(
        "/mj/submit/imagine", {"prompt": "a kite", "notifyHook": receiver.url, "state": "s-1"}
    )
    task_id = answer.json()["result"]
    await until(lambda: any(t["status"] == "SUCCESS" for t in receiver.tasks()))

    tasks = receiver.tasks()
    assert {t["id"] for t in tasks} == {task_id}
    ranks = [(ORDER[t["status"]], int(t["progress"].rstrip("%") or 0)) for t in tasks]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)  # each change once, none lost or doubled
    assert tasks[0]["status"] in {"NOT_START", "SUBMITTED"}
    final = tasks[-1]
    assert final["state"] == "s-1"
    assert final["imageUrl"].startswith(gateway.base_url)
    assert final["buttons"]
    for headers, body in receiver.received:
        timestamp = headers["X-Gateway-Timestamp"]
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        assert headers["X-Gateway-Signature"] == f"sha256={expected.hexdigest()}"
    assert receiver.posts == len(receiver.received) + 3  # two 500s and one timeout, retried
    pool = gateway.services.pool
    pending = await pool.fetchval(
        "SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL AND task_id = $1",
        int(task_id),
    )
    assert pending == 0


async def test_a_failing_hook_is_retried_then_given_up_and_money_is_untouched(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, receiver: Receiver
) -> None:
    receiver.fail_first = 10_000
    gateway = await gateway_factory(relay=FAST_RETRIES | {"webhook_retry_for_s": 1.0})
    simulator = await simulator_factory()
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)

    answer = await client.post(
        "/mj/submit/imagine", {"prompt": "a kite", "notifyHook": receiver.url}
    )
    await client.wait_for(answer.json()["result"], {"SUCCESS"})
    pool = gateway.services.pool
    await until(lambda: receiver.posts >= 3)
    given_up = "SELECT count(*) FROM webhook_outbox WHERE given_up_at IS NOT NULL"
    for _ in range(200):
        if await pool.fetchval(given_up):
            break
        await asyncio.sleep(0.05)

    row = await pool.fetchrow(
        "SELECT attempts, last_error FROM webhook_outbox WHERE given_up_at IS NOT NULL LIMIT 1"
    )
    assert row["attempts"] >= 3
    assert row["last_error"] == "HTTP 500"
    assert await client.balance() == START_UNITS - 100_000


@pytest.mark.parametrize(
    "hook",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[64:ff9b::a00:1]/hook",
        "http://[2002:7f00:1::1]/hook",
        "http://[::127.0.0.1]/",
        "http://[::a9fe:a9fe]/",
        "http://[64:ff9b:1::a9fe:a9fe]/",
        "http://[64:ff9b:1::7f00:1]/",
        "http://[fec0::1]/",
        "ftp://example.com/hook",
    ],
)
async def test_private_and_odd_hooks_are_refused_unless_allowed(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, hook: str
) -> None:
    gateway = await gateway_factory()
    simulator = await simulator_factory()
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)

    answer = await client.post("/mj/submit/imagine", {"prompt": "a kite", "notifyHook": hook})

    assert (answer.status_code, answer.json()["code"]) == (400, 21)
    assert "notifyHook" in answer.json()["description"]
    assert await client.balance() == START_UNITS
    assert await gateway.services.pool.fetchval("SELECT count(*) FROM tasks") == 0


async def test_a_loopback_receiver_gets_nothing_unless_the_operator_allows_it(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, receiver: Receiver
) -> None:
    simulator = await simulator_factory()
    closed = await gateway_factory()
    await closed.add_channel(simulator)
    client = await closed.client_with_key(balance_units=START_UNITS)
    refused = await client.post(
        "/mj/submit/imagine", {"prompt": "a kite", "notifyHook": receiver.url}
    )
    assert refused.status_code == 400

    opened = await gateway_factory(relay=FAST_RETRIES)
    other = await opened.client_with_key(balance_units=START_UNITS, name="bob")
    accepted = await other.post(
        "/mj/submit/imagine", {"prompt": "a kite", "notifyHook": receiver.url}
    )
    await other.wait_for(accepted.json()["result"], {"SUCCESS"})
    await until(lambda: any(t["status"] == "SUCCESS" for t in receiver.tasks()))
    assert {t["id"] for t in receiver.tasks()} == {accepted.json()["result"]}


async def test_delivery_checks_the_address_again(
    gateway_factory: StartGateway, receiver: Receiver
) -> None:
    gateway = await gateway_factory(relay={"webhook_poll_s": 0.02})
    pool = gateway.services.pool
    client = await gateway.client_with_key(balance_units=START_UNITS)
    key_id = await client.key_id()
    task_id = await pool.fetchval(  # a hook that got past the submit's check somehow
        "INSERT INTO tasks (user_id, api_key_id, action, price_action, mode, price_units, status,"
        " notify_hook, submit_time_ms) VALUES ($1, $2, 'IMAGINE', 'mj_imagine', 'FAST', 0,"
        " 'SUBMITTING', $3, 0) RETURNING id",
        client.user_id,
        key_id,
        receiver.url,
    )
    await pool.execute("UPDATE tasks SET status = 'SUBMITTED' WHERE id = $1", task_id)

    given_up = (
        "SELECT last_error FROM webhook_outbox WHERE task_id = $1 AND given_up_at IS NOT NULL"
    )
    error = None
    for _ in range(200):
        if (error := await pool.fetchval(given_up, task_id)) is not None:
            break
        await asyncio.sleep(0.02)
    assert error is not None
    assert error.startswith("refused")
    assert receiver.posts == 0
