"""Rate limits through the client API: requests a minute and open tasks, per key and per user,
their headers, and what happens when Redis is down."""

from __future__ import annotations

import asyncio
import dataclasses
from urllib.parse import urlsplit

import httpx
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from gateway import admin
from gateway.auth.limits import RateLimits
from gateway.domain import Principal
from gateway.errors import RateLimited
from gateway.simulator import RunningSimulator
from gateway.storage.redis_keys import RedisKeys
from gateway.storage.servers import Servers
from tests.api.helpers import PRICE, assert_error, sim_routes, submitted_id
from tests.conftest import Client, Gateway, StartGateway, StartSimulator
from tests.support import TcpProxy

START = 1_000_000
IMAGINE = PRICE["mj_imagine"]
LIST = "/mj/task/list"
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def _stopped_clock() -> int:
    return 1_800_000_030_000  # 30 s into a minute


async def _gateway(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    speed_factor: float = 1000.0,
    redis_through: str | None = None,
) -> tuple[Gateway, RunningSimulator]:
    """A gateway that reads limits afresh on every request (no auth cache), with one channel,
    whose per-minute windows follow a clock stopped in the middle of a minute: every request of
    a test falls in one window, without waiting for the next minute."""
    gateway = await gateway_factory(
        relay={"auth_cache_ttl_s": 0}, redis_through=redis_through, rate_clock_ms=_stopped_clock
    )
    simulator = await simulator_factory(speed_factor=speed_factor)
    await gateway.add_channel(simulator)
    return gateway, simulator


async def _key(gateway: Gateway, user_id: int, **options: int) -> Client:
    return Client(gateway, user_id, await gateway.issue_key(user_id, **options))


def _rate(response: httpx.Response) -> tuple[int, int]:
    """(X-RateLimit-Limit, X-RateLimit-Remaining), checking X-RateLimit-Reset on the way."""
    reset_s = int(response.headers["X-RateLimit-Reset"])
    assert 1 <= reset_s <= 60, reset_s
    return int(response.headers["X-RateLimit-Limit"]), int(
        response.headers["X-RateLimit-Remaining"]
    )


def _refused(response: httpx.Response, limit: int) -> None:
    """A 429/23 of a per-minute limit: Retry-After, and the headers of the limit that refused."""
    assert_error(response, 429, 23)
    assert _rate(response) == (limit, 0)
    assert response.headers["Retry-After"] == response.headers["X-RateLimit-Reset"]


def _limited(label: str) -> float:
    return REGISTRY.get_sample_value("gateway_rate_limited_total", {"limit": label}) or 0.0


async def _imagines(gateway: Gateway, simulator: RunningSimulator) -> int:
    return (await sim_routes(gateway.http, simulator)).get("submit/imagine", 0)


async def test_a_keys_requests_a_minute_show_in_headers_and_refuse_past_the_limit(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, redis_client: aioredis.Redis
) -> None:
    gateway, simulator = await _gateway(gateway_factory, simulator_factory)
    user_id = await gateway.create_user(balance_units=START)
    client = await _key(gateway, user_id, requests_per_minute=3)
    before = _limited("key_requests_per_minute")

    missing = await client.get("/mj/task/1000000000000000/fetch")
    listed = await client.get(LIST)
    submitted = await client.post("/mj/submit/imagine", {"prompt": "a cat"})
    over_list = await client.get(LIST)
    over_submit = await client.post("/mj/submit/imagine", {"prompt": "a dog"})

    assert_error(missing, 404, 21)
    assert _rate(missing) == (3, 2)
    assert listed.status_code == 200
    assert _rate(listed) == (3, 1)
    submitted_id(submitted)
    assert _rate(submitted) == (3, 0)
    _refused(over_list, 3)
    _refused(over_submit, 3)
    assert "key" in over_submit.json()["description"]
    assert await client.balance() == START - IMAGINE
    assert await _imagines(gateway, simulator) == 1
    assert _limited("key_requests_per_minute") - before == 2


async def test_a_caller_without_a_per_minute_limit_gets_no_rate_headers(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, _ = await _gateway(gateway_factory, simulator_factory)
    client = await gateway.client_with_key()

    response = await client.get(LIST)

    assert response.status_code == 200
    assert not set(RATE_HEADERS) & set(response.headers)


async def test_a_users_limit_spans_its_keys_and_its_refusals_use_none_of_a_keys_allowance(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, redis_client: aioredis.Redis
) -> None:
    gateway, _ = await _gateway(gateway_factory, simulator_factory)
    user_id = await gateway.create_user(balance_units=START)
    await admin.set_user_limits(
        gateway.services.pool, user_id, requests_per_minute=4, max_open_tasks=None
    )
    limited = await _key(gateway, user_id, requests_per_minute=10)
    plain = await _key(gateway, user_id)
    before = _limited("user_requests_per_minute")

    first = await limited.get(LIST)
    others = [await plain.get(LIST) for _ in range(3)]
    refused = [await limited.get(LIST) for _ in range(2)]
    refused_plain = await plain.get(LIST)

    assert _rate(first) == (4, 3)  # the user's 3 left are fewer than the key's 9
    assert [_rate(response) for response in others] == [(4, 2), (4, 1), (4, 0)]
    for response in [*refused, refused_plain]:
        _refused(response, 4)
        assert "user" in response.json()["description"]
    assert _limited("user_requests_per_minute") - before == 3

    # Without the user's limit, the key has used one request of its ten: the refused ones
    # counted against neither.
    await admin.set_user_limits(
        gateway.services.pool, user_id, requests_per_minute=None, max_open_tasks=None
    )
    assert _rate(await limited.get(LIST)) == (10, 8)
    assert not set(RATE_HEADERS) & set((await plain.get(LIST)).headers)


async def test_a_keys_refusals_use_none_of_its_users_allowance(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, redis_client: aioredis.Redis
) -> None:
    gateway, _ = await _gateway(gateway_factory, simulator_factory)
    user_id = await gateway.create_user(balance_units=START)
    await admin.set_user_limits(
        gateway.services.pool, user_id, requests_per_minute=3, max_open_tasks=None
    )
    limited = await _key(gateway, user_id, requests_per_minute=1)
    plain = await _key(gateway, user_id)

    assert _rate(await limited.get(LIST)) == (1, 0)
    for _ in range(3):
        _refused(await limited.get(LIST), 1)
    assert [_rate(await plain.get(LIST)) for _ in range(2)] == [(3, 1), (3, 0)]
    _refused(await plain.get(LIST), 3)


async def test_a_keys_open_tasks_cap_admits_exactly_the_cap_and_frees_a_slot_when_a_task_ends(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, simulator = await _gateway(gateway_factory, simulator_factory, speed_factor=5.0)
    user_id = await gateway.create_user(balance_units=START)
    client = await _key(gateway, user_id)
    await admin.set_key_rate_limits(
        gateway.services.pool, await client.key_id(), requests_per_minute=100, max_open_tasks=3
    )
    before = _limited("key_open_tasks")

    responses = await asyncio.gather(
        *(client.post("/mj/submit/imagine", {"prompt": f"a cat {n}"}) for n in range(12))
    )

    accepted = [submitted_id(r) for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(accepted) == 3, [r.text for r in responses]
    for response in refused:
        assert_error(response, 429, 23)
        assert response.headers["Retry-After"] == "5"
        assert response.headers["X-RateLimit-Limit"] == "100"  # the key's per-minute standing
        assert "key" in response.json()["description"]
    assert _limited("key_open_tasks") - before == 9
    assert await client.balance() == START - 3 * IMAGINE
    assert await _imagines(gateway, simulator) == 3

    cancelled = await client.post(f"/mj/task/{accepted[0]}/cancel", {})
    assert cancelled.status_code == 200, cancelled.text
    submitted_id(await client.post("/mj/submit/imagine", {"prompt": "a cat again"}))
    assert_error(await client.post("/mj/submit/imagine", {"prompt": "one more"}), 429, 23)
    assert await client.balance() == START - 3 * IMAGINE  # the cancelled one was refunded


async def test_a_users_open_tasks_cap_spans_its_keys_and_frees_when_the_poller_ends_a_task(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, simulator = await _gateway(gateway_factory, simulator_factory, speed_factor=5.0)
    user_id = await gateway.create_user(balance_units=START)
    await admin.set_user_limits(
        gateway.services.pool, user_id, requests_per_minute=None, max_open_tasks=2
    )
    clients = [await _key(gateway, user_id), await _key(gateway, user_id)]
    before = _limited("user_open_tasks")

    responses = await asyncio.gather(
        *(clients[n % 2].post("/mj/submit/imagine", {"prompt": f"a dog {n}"}) for n in range(10))
    )

    accepted = [submitted_id(r) for r in responses if r.status_code == 200]
    assert len(accepted) == 2, [r.text for r in responses]
    for response in responses:
        if response.status_code != 200:
            assert_error(response, 429, 23)
            assert "user" in response.json()["description"]
    assert _limited("user_open_tasks") - before == 8
    assert await clients[0].balance() == START - 2 * IMAGINE
    assert await _imagines(gateway, simulator) == 2


async def test_a_task_the_poller_ends_frees_its_slot(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, _ = await _gateway(gateway_factory, simulator_factory, speed_factor=25.0)
    user_id = await gateway.create_user(balance_units=START)
    await admin.set_user_limits(
        gateway.services.pool, user_id, requests_per_minute=None, max_open_tasks=1
    )
    first, second = await _key(gateway, user_id), await _key(gateway, user_id)

    running = submitted_id(await first.post("/mj/submit/imagine", {"prompt": "a slow fox"}))
    assert_error(await second.post("/mj/submit/imagine", {"prompt": "a fox"}), 429, 23)
    await first.wait_for(running, {"SUCCESS"}, timeout_s=15)
    submitted_id(await second.post("/mj/submit/imagine", {"prompt": "a fox"}))
    assert await first.balance() == START - 2 * IMAGINE


async def test_rate_limits_fail_open_when_redis_is_down_and_billing_goes_on(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    redis_client: aioredis.Redis,
    servers: Servers,
) -> None:
    parts = urlsplit(servers.redis_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    proxy = await TcpProxy(lambda: asyncio.open_connection(host, port)).start()
    gateway, simulator = await _gateway(
        gateway_factory, simulator_factory, redis_through=f"redis://127.0.0.1:{proxy.port}/0"
    )
    user_id = await gateway.create_user(balance_units=START)
    await admin.set_user_limits(
        gateway.services.pool, user_id, requests_per_minute=1, max_open_tasks=None
    )
    client = await _key(gateway, user_id, requests_per_minute=1)
    assert _rate(await client.get(LIST)) == (1, 0)
    _refused(await client.get(LIST), 1)
    failed_open = REGISTRY.get_sample_value("gateway_rate_limit_fail_open_total") or 0.0

    await proxy.cut()
    try:
        listed = [await client.get(LIST) for _ in range(3)]
        submitted = await client.post("/mj/submit/imagine", {"prompt": "a cat"})
    finally:
        await proxy.cut()

    for response in listed:
        assert response.status_code == 200, response.text
        assert not set(RATE_HEADERS) & set(response.headers)
    submitted_id(submitted)
    assert await client.balance() == START - IMAGINE
    assert await _imagines(gateway, simulator) == 1
    after = REGISTRY.get_sample_value("gateway_rate_limit_fail_open_total") or 0.0
    assert after - failed_open == 4


async def test_the_count_is_exact_under_concurrency_and_counts_in_both_or_neither(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    limits = RateLimits(redis_client, RedisKeys(redis_prefix), clock_ms=_stopped_clock)
    key = Principal(
        user_id=1,
        key_id=1,
        group_ratio_bp=10_000,
        webhook_secret="",
        expires_at_ms=None,
        allowed_actions=None,
        allowed_networks=None,
        requests_per_minute=150,
        user_requests_per_minute=100,
    )
    other_key = dataclasses.replace(key, key_id=2, requests_per_minute=None)

    at_once = asyncio.Semaphore(50)  # 50 connections at a time, as a few busy processes open

    async def count(principal: Principal) -> int | None:
        try:
            async with at_once:
                rate = await limits.count_request(principal)
        except RateLimited:
            return None
        assert rate is not None
        return rate.remaining

    remaining = await asyncio.gather(*(count(key) for _ in range(400)))

    accepted = [left for left in remaining if left is not None]
    assert sorted(accepted) == list(range(100))  # each count seen once: none lost, none twice
    key_count = await redis_client.get(RedisKeys(redis_prefix).key_requests(1, 1))
    assert int(key_count or 0) == 100  # the user's refusals took nothing of the key's 150
    assert await count(other_key) is None
