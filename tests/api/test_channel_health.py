"""Channel health against real simulators, PostgreSQL and Redis: failure streaks that rest a
channel in every replica, probes that bring it back (never a disabled one), the in-flight cap,
and a channel killed and revived in the middle of steady traffic."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis.asyncio as aioredis

from gateway.routing.cooldowns import Cooldowns, CoolReason
from gateway.simulator import RunningSimulator
from gateway.storage.redis_keys import RedisKeys
from gateway.storage.servers import Servers
from tests.api.helpers import (
    IMAGINE_PRICE,
    assert_error,
    button,
    imagine_done,
    metric_value,
    scrape,
    set_faults,
    sim_requests,
    sim_submits,
    sim_tasks,
    start_sim,
    submitted_id,
    task_channel,
)
from tests.conftest import Client, Gateway, StartGateway, StartSimulator
from tests.processes import StartGatewayProcess
from tests.support import TcpProxy

START = 100 * IMAGINE_PRICE
PROBE = "task/list-by-condition"


async def _eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 10.0
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


class Health:
    """The shared health state, read straight from Redis."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)

    async def cooldown(self, channel_id: int) -> str | None:
        """``"<until ms> <reason>"`` while the channel rests (or just after), else None."""
        raw: bytes | None = await self._redis.hget(self._keys.channel_cooldowns, str(channel_id))
        return raw.decode() if raw else None

    async def streak(self, channel_id: int) -> int:
        raw = await self._redis.hget(self._keys.channel_failures, str(channel_id))
        return int(raw.decode().split()[0]) if raw else 0


async def _preferred_and_fallback(
    gateway: Gateway,
    simulator_factory: StartSimulator,
    names: tuple[str, str],
    preferred: dict[str, Any] | None = None,
    fallback: dict[str, Any] | None = None,
) -> tuple[RunningSimulator, int, RunningSimulator, int]:
    """Two simulators as channels: the preferred one (priority 1) with the fallback behind it
    (priority 0), each started with its own simulator settings; (simulator, channel id) of each."""
    first = await start_sim(simulator_factory, **(preferred or {}))
    second = await start_sim(simulator_factory, **(fallback or {}))
    first_id = await gateway.add_channel(first, name=names[0], priority=1)
    second_id = await gateway.add_channel(second, name=names[1], priority=0)
    return first, first_id, second, second_id


async def _imagine(client: Client, prompt: str = "a cat") -> str:
    return submitted_id(await client.post("/mj/submit/imagine", {"prompt": prompt}))


# --- failure streaks -----------------------------------------------------------------------------


async def test_failures_in_a_row_rest_a_channel_in_every_replica_and_a_success_resets_them(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    upstream = {"failures_to_cool": 3, "cooldown_s": 60.0, "probe_interval_s": 60.0}
    first = await gateway_factory(upstream=upstream)
    second = await gateway_factory(upstream=upstream)
    flaky, flaky_id, _good, good_id = await _preferred_and_fallback(
        first, simulator_factory, ("flaky", "good"), preferred={"faults": {"http_500": 1.0}}
    )
    second.services.channels.invalidate()
    one = await first.client_with_key(balance_units=START)
    other = Client(second, one.user_id, one.key)
    health = Health(redis_client, redis_prefix)
    before = await scrape(first)

    for number in range(2):  # two failures, from the first replica
        assert await task_channel(first, await _imagine(one, f"cat {number}")) == good_id
    assert await health.streak(flaky_id) == 2

    await set_faults(first.http, flaky, http_500=0.0)
    # The other replica has seen no failure itself: it knows of the streak from its view of
    # Redis, at most a second old.
    await asyncio.sleep(1.1)
    success = await _imagine(other, "a success")
    assert await task_channel(second, success) == flaky_id
    assert await health.streak(flaky_id) == 0
    await other.wait_for(success, {"SUCCESS"})  # no open task there: no poll answers below

    await set_faults(first.http, flaky, http_500=1.0)
    for number in range(2):
        assert await task_channel(first, await _imagine(one, f"dog {number}")) == good_id
    assert await health.streak(flaky_id) == 2  # counted afresh after the success
    assert await health.cooldown(flaky_id) is None
    assert await task_channel(second, await _imagine(other, "the third")) == good_id
    cooldown = await health.cooldown(flaky_id)
    assert cooldown is not None
    assert cooldown.endswith(" failures"), cooldown

    asked = await sim_submits(first.http, flaky)
    assert asked == 2 + 1 + 2 + 1
    await asyncio.sleep(1.1)  # every replica rereads the shared state at most once a second
    for number in range(3):
        assert await task_channel(first, await _imagine(one, f"owl {number}")) == good_id
        assert await task_channel(second, await _imagine(other, f"elk {number}")) == good_id
    assert await sim_submits(first.http, flaky) == asked
    assert await one.balance() == START - 12 * IMAGINE_PRICE
    after = await scrape(first)
    cooled = {"channel": "flaky", "reason": "failures"}
    moved = metric_value(after, "gateway_channel_cooldowns_total", **cooled) - metric_value(
        before, "gateway_channel_cooldowns_total", **cooled
    )
    assert moved == 1


async def test_answered_polls_break_a_row_of_failed_submits(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    """Failures with answered polls of the channel between them are not in a row."""
    upstream = {"failures_to_cool": 3, "cooldown_s": 60.0, "probe_interval_s": 60.0}
    gateway = await gateway_factory(upstream=upstream)
    flaky, flaky_id, _good, good_id = await _preferred_and_fallback(
        gateway, simulator_factory, ("flaky", "good")
    )
    client = await gateway.client_with_key(balance_units=START)
    health = Health(redis_client, redis_prefix)
    stalled = await _imagine(client, "a fox [[sim:stall]]")  # open there: polled every round
    assert await task_channel(gateway, stalled) == flaky_id
    await set_faults(gateway.http, flaky, http_500=1.0)

    for number in range(4):
        assert await task_channel(gateway, await _imagine(client, f"cat {number}")) == good_id
        asked = await sim_requests(gateway.http, flaky, PROBE)

        async def polled(asked: int = asked) -> bool:
            return await sim_requests(gateway.http, flaky, PROBE) > asked

        await _eventually(polled, "a poll of the channel")

        async def streak_ended() -> bool:
            return await health.streak(flaky_id) == 0

        await _eventually(streak_ended, "the answered poll ends the streak")

    assert await health.cooldown(flaky_id) is None
    assert await sim_submits(gateway.http, flaky) == 5


async def test_a_success_in_another_process_ends_a_streak_it_has_not_seen_yet(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    """The second process last read the shared state more than a second ago (here: never)."""
    keys = RedisKeys(redis_prefix)
    counting = Cooldowns(redis_client, keys, 60.0, failures_to_cool=3)
    other = Cooldowns(redis_client, keys, 60.0, failures_to_cool=3)
    health = Health(redis_client, redis_prefix)
    for _ in range(2):
        assert await counting.failed(7, CoolReason.FAILURES) is None
    assert await health.streak(7) == 2

    await other.succeeded(7)

    assert await health.streak(7) == 0
    assert await counting.failed(7, CoolReason.FAILURES) is None
    assert await counting.cooling() == {}


async def test_failures_in_a_row_rest_a_channel_while_redis_is_down(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, servers: Servers
) -> None:
    parts = urlsplit(servers.redis_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    proxy = await TcpProxy(lambda: asyncio.open_connection(host, port)).start()
    upstream = {"failures_to_cool": 2, "cooldown_s": 60.0, "probe_interval_s": 60.0}
    gateway = await gateway_factory(
        upstream=upstream, redis_through=f"redis://127.0.0.1:{proxy.port}/0"
    )
    flaky = await start_sim(simulator_factory, faults={"http_500": 1.0})
    good = await start_sim(simulator_factory)
    await gateway.add_channel(flaky, name="flaky", priority=1)
    good_id = await gateway.add_channel(good, name="good", priority=0)
    client = await gateway.client_with_key(balance_units=START)

    await proxy.cut()
    try:
        for number in range(5):
            assert await task_channel(gateway, await _imagine(client, f"cat {number}")) == good_id
    finally:
        await proxy.cut()

    assert await sim_submits(gateway.http, flaky) == 2
    assert await client.balance() == START - 5 * IMAGINE_PRICE


async def test_a_cooldown_entry_of_the_previous_format_rests_no_channel(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    """The previous release kept "<until ms>" under ``channels:cooldown``; a new process
    running beside one neither reads those entries nor writes there."""
    gateway = await gateway_factory(upstream={"failures_to_cool": 1, "cooldown_s": 60.0})
    first, first_id, _second, second_id = await _preferred_and_fallback(
        gateway, simulator_factory, ("first", "second")
    )
    client = await gateway.client_with_key(balance_units=START)
    previous = f"{redis_prefix}channels:cooldown"
    until_ms = int(time.time() * 1000) + 60_000
    await redis_client.hset(previous, str(first_id), str(until_ms))
    await asyncio.sleep(1.1)  # every view of the shared state is reread

    assert await task_channel(gateway, await _imagine(client)) == first_id
    await set_faults(gateway.http, first, http_500=1.0)
    assert await task_channel(gateway, await _imagine(client, "a dog")) == second_id

    health = Health(redis_client, redis_prefix)
    cooldown = await health.cooldown(first_id)
    assert cooldown is not None
    assert cooldown.endswith(" failures"), cooldown
    assert await redis_client.hgetall(previous) == {str(first_id).encode(): str(until_ms).encode()}


# --- probes --------------------------------------------------------------------------------------


async def test_a_probe_brings_a_revived_channel_back_without_live_traffic(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    """While the channel is down its failed probes keep it resting past its first cooldown, so
    no submit is sent to it; once it answers, a probe brings it back before any submit."""
    upstream = {"failures_to_cool": 2, "cooldown_s": 1.5, "probe_interval_s": 0.2}
    gateway = await gateway_factory(upstream=upstream)
    dying, dying_id, _good, good_id = await _preferred_and_fallback(
        gateway, simulator_factory, ("dying", "good")
    )
    client = await gateway.client_with_key(balance_units=START)
    health = Health(redis_client, redis_prefix)
    port = int(dying.base_url.rsplit(":", 1)[1])
    await dying.stop()
    before = await scrape(gateway)

    for number in range(2):
        assert await task_channel(gateway, await _imagine(client, f"cat {number}")) == good_id
    cooldown = await health.cooldown(dying_id)
    assert cooldown is not None
    assert cooldown.endswith(" unreachable"), cooldown
    for number in range(10):  # 2.5 s: past the first cooldown
        assert await task_channel(gateway, await _imagine(client, f"dog {number}")) == good_id
        await asyncio.sleep(0.25)
    text = await scrape(gateway)
    sent = "gateway_channel_selections_total"
    assert (
        metric_value(text, sent, channel="dying") - metric_value(before, sent, channel="dying") == 2
    )
    probes = "gateway_channel_probes_total"
    failed = {"channel": "dying", "outcome": "failed"}
    assert metric_value(text, probes, **failed) - metric_value(before, probes, **failed) >= 2
    assert metric_value(text, "gateway_channel_state", channel="dying", state="cooling") == 1

    revived = await start_sim(simulator_factory, port=port)

    async def back() -> bool:
        return await health.cooldown(dying_id) is None

    await _eventually(back, "the probe ends the cooldown")  # only a probe removes the entry
    assert await sim_submits(gateway.http, revived) == 0  # the probe was no live submit
    assert await sim_requests(gateway.http, revived, PROBE) >= 1
    assert await task_channel(gateway, await _imagine(client, "back")) == dying_id
    assert await sim_submits(gateway.http, revived) == 1
    text = await scrape(gateway)
    good_probes = {"channel": "dying", "outcome": "ok"}
    assert (
        metric_value(text, probes, **good_probes) - metric_value(before, probes, **good_probes) >= 1
    )
    assert metric_value(text, "gateway_channel_state", channel="dying", state="up") == 1


async def test_a_disabled_channel_stays_disabled_whatever_the_probe_says(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    upstream = {"failures_to_cool": 1, "cooldown_s": 30.0, "probe_interval_s": 0.1}
    gateway = await gateway_factory(upstream=upstream)
    off, off_id, _good, good_id = await _preferred_and_fallback(
        gateway, simulator_factory, ("off", "good"), preferred={"faults": {"http_500": 1.0}}
    )
    client = await gateway.client_with_key(balance_units=START)
    health = Health(redis_client, redis_prefix)
    assert await task_channel(gateway, await _imagine(client)) == good_id
    assert await health.cooldown(off_id) is not None
    pool = gateway.services.pool
    await pool.execute("UPDATE channels SET enabled = false WHERE id = $1", off_id)
    gateway.services.channels.invalidate()
    await set_faults(gateway.http, off, http_500=0.0)  # it would answer a probe now

    channel = await gateway.services.channels.get(off_id)
    assert channel is not None
    direct = await gateway.services.upstream.probe(channel)  # the call works on it on its own
    assert direct.ok, direct
    await asyncio.sleep(0.6)  # six probe intervals of the leader's prober

    assert await sim_requests(gateway.http, off, PROBE) == 1  # the direct call, no other
    assert await pool.fetchval("SELECT enabled FROM channels WHERE id = $1", off_id) is False
    for number in range(3):
        assert await task_channel(gateway, await _imagine(client, f"dog {number}")) == good_id
    assert await sim_submits(gateway.http, off) == 1
    text = await scrape(gateway)
    assert metric_value(text, "gateway_channel_state", channel="off", state="disabled") == 1
    assert metric_value(text, "gateway_channel_state", channel="off", state="cooling") == 0


async def test_a_good_probe_does_not_end_a_no_account_cooldown(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    """A probe cannot see accounts: the cooldown runs its course, and no submit goes there."""
    gateway = await gateway_factory(upstream={"cooldown_s": 30.0, "probe_interval_s": 0.1})
    empty, empty_id, _good, good_id = await _preferred_and_fallback(
        gateway, simulator_factory, ("empty", "good"), preferred={"accounts": 0}
    )
    client = await gateway.client_with_key(balance_units=START)
    health = Health(redis_client, redis_prefix)
    assert await task_channel(gateway, await _imagine(client)) == good_id

    async def probed_twice() -> bool:
        return await sim_requests(gateway.http, empty, PROBE) >= 2

    await _eventually(probed_twice, "two probes of the channel without accounts")
    cooldown = await health.cooldown(empty_id)
    assert cooldown is not None
    assert cooldown.endswith(" no_account"), cooldown
    assert await task_channel(gateway, await _imagine(client, "again")) == good_id
    assert await sim_submits(gateway.http, empty) == 1


async def test_a_good_probe_does_not_end_a_cooldown_that_failed_submits_started(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    """A channel that answers lists but fails every submit (code 9, HTTP 500, not JSON) rests
    its whole cooldown, good probes or not, and then gets live traffic again."""
    upstream = {"failures_to_cool": 3, "cooldown_s": 2.0, "probe_interval_s": 0.1}
    gateway = await gateway_factory(upstream=upstream)
    broken, broken_id, _good, good_id = await _preferred_and_fallback(
        gateway, simulator_factory, ("broken", "good")
    )
    client = await gateway.client_with_key(balance_units=START)
    health = Health(redis_client, redis_prefix)
    before = await scrape(gateway)
    for number, fault in enumerate(("system_error", "http_500", "not_json")):
        await set_faults(gateway.http, broken, **{fault: 1.0})
        assert await task_channel(gateway, await _imagine(client, f"cat {number}")) == good_id
        await set_faults(gateway.http, broken, **{fault: 0.0})
    cooldown = await health.cooldown(broken_id)
    assert cooldown is not None
    assert cooldown.endswith(" failures"), cooldown
    await set_faults(gateway.http, broken, system_error=1.0)

    async def probed_twice() -> bool:
        return await sim_requests(gateway.http, broken, PROBE) >= 2

    await _eventually(probed_twice, "two good probes of the channel")
    assert await health.cooldown(broken_id) == cooldown  # neither ended nor extended
    for number in range(3):
        assert await task_channel(gateway, await _imagine(client, f"dog {number}")) == good_id
    assert await sim_submits(gateway.http, broken) == 3
    text = await scrape(gateway)
    good_probes = {"channel": "broken", "outcome": "ok"}
    probes = "gateway_channel_probes_total"
    assert (
        metric_value(text, probes, **good_probes) - metric_value(before, probes, **good_probes) >= 2
    )
    cooled = {"channel": "broken", "reason": "failures"}
    moved = metric_value(text, "gateway_channel_cooldowns_total", **cooled) - metric_value(
        before, "gateway_channel_cooldowns_total", **cooled
    )
    assert moved == 1

    await set_faults(gateway.http, broken, system_error=0.0)
    until_s = int(cooldown.split()[0]) / 1000
    await asyncio.sleep(max(0.0, until_s - time.time()) + 1.1)  # + the shared view's age
    assert await task_channel(gateway, await _imagine(client, "again")) == broken_id


# --- a channel killed and revived during a run ---------------------------------------------------


async def test_a_channel_killed_and_revived_during_steady_traffic(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    """Cooldown, traffic moves away, probe, traffic returns; every submit is served or refused
    with a documented code, and only accepted tasks are charged."""
    upstream = {"failures_to_cool": 3, "cooldown_s": 30.0, "probe_interval_s": 0.2}
    gateway = await gateway_factory(upstream=upstream)
    victim = await start_sim(simulator_factory, accounts=20)
    steady = await start_sim(simulator_factory, accounts=20)
    victim_id = await gateway.add_channel(victim, name="victim")
    await gateway.add_channel(steady, name="steady")
    client = await gateway.client_with_key(balance_units=100_000 * IMAGINE_PRICE)
    health = Health(redis_client, redis_prefix)
    port = int(victim.base_url.rsplit(":", 1)[1])
    answers: list[httpx.Response] = []
    running = True

    async def traffic(lane: int) -> None:
        number = 0
        while running:
            number += 1
            answers.append(await client.post("/mj/submit/imagine", {"prompt": f"{lane} {number}"}))
            await asyncio.sleep(0.005)

    async def victim_selections() -> float:
        text = await scrape(gateway)
        return metric_value(text, "gateway_channel_selections_total", channel="victim")

    lanes = [asyncio.create_task(traffic(lane)) for lane in range(2)]
    try:

        async def both_busy() -> bool:
            return (
                min(
                    await sim_submits(gateway.http, victim), await sim_submits(gateway.http, steady)
                )
                >= 5
            )

        await _eventually(both_busy, "traffic on both channels")
        await victim.stop()

        async def cooling() -> bool:
            return await health.cooldown(victim_id) is not None

        await _eventually(cooling, "the dead channel rests")
        await asyncio.sleep(0.1)  # submits already on their way to it end
        sent_while_down = await victim_selections()
        served = len(answers)
        await asyncio.sleep(1.0)
        assert len(answers) > served + 10  # traffic went on, all of it elsewhere
        assert await victim_selections() == sent_while_down

        revived = await start_sim(simulator_factory, port=port, accounts=20)

        async def traffic_back() -> bool:
            return await sim_submits(gateway.http, revived) >= 5

        await _eventually(traffic_back, "traffic returns to the revived channel")
        assert await sim_requests(gateway.http, revived, PROBE) >= 1
    finally:
        running = False
        await asyncio.gather(*lanes)

    accepted = 0
    for answer in answers:
        if answer.status_code == 200:
            submitted_id(answer)
            accepted += 1
        else:  # documented refusals only: 502/23, 503/23, 503/24, 504/23
            body = assert_error(answer, answer.status_code, answer.json()["code"])
            assert (answer.status_code, body["code"]) in {
                (502, 23),
                (503, 23),
                (503, 24),
                (504, 23),
            }
    assert accepted >= len(answers) - 2  # at most the submits in flight when it died
    async with (
        gateway.services.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read"),
    ):
        balance = await conn.fetchval(
            "SELECT balance_units FROM users WHERE id = $1", client.user_id
        )
        charged = await conn.fetchval(
            "SELECT count(*) FROM tasks WHERE user_id = $1"
            " AND status NOT IN ('REJECTED', 'FAILURE', 'CANCEL')",
            client.user_id,
        )
        refused = await conn.fetchval(
            "SELECT count(*) FROM tasks WHERE user_id = $1 AND status = 'REJECTED'", client.user_id
        )
    assert balance == 100_000 * IMAGINE_PRICE - charged * IMAGINE_PRICE
    assert refused == len(answers) - accepted


# --- the in-flight cap ---------------------------------------------------------------------------


async def test_the_in_flight_cap_holds_across_replicas_and_frees_a_slot_when_a_task_ends(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    cap = 3
    first = await gateway_factory()
    second = await gateway_factory()
    slow = await start_sim(simulator_factory, speed_factor=2.0, accounts=4)  # tasks stay open
    slow_id = await first.add_channel(slow, name="slow")
    await first.services.pool.execute(
        "UPDATE channels SET max_in_flight = $2 WHERE id = $1", slow_id, cap
    )
    first.services.channels.invalidate()
    second.services.channels.invalidate()
    one = await first.client_with_key(balance_units=START)
    other = Client(second, one.user_id, one.key)

    answers = await asyncio.gather(
        *(
            (one if number % 2 else other).post("/mj/submit/imagine", {"prompt": f"cat {number}"})
            for number in range(16)
        )
    )

    accepted = [submitted_id(a) for a in answers if a.status_code == 200]
    assert len(accepted) == cap
    for answer in answers:
        if answer.status_code != 200:
            assert_error(answer, 503, 23, retry_after=True)
    assert await sim_tasks(first.http, slow) == cap
    assert await sim_submits(first.http, slow) == cap  # the refused ones never reached it
    assert await one.balance() == START - cap * IMAGINE_PRICE
    await first.services.poller.run_once()
    text = await scrape(first)
    assert metric_value(text, "gateway_channel_in_flight", channel="slow") == cap
    assert metric_value(text, "gateway_channel_cap_refusals_total", channel="slow") >= 1

    # The poller may see the upstream's CANCEL first (then the cancel answers 400/21): either
    # way the task has ended, and its place is free at once.
    await one.post(f"/mj/task/{accepted[0]}/cancel", {})
    assert (await one.wait_for(accepted[0], {"CANCEL", "FAILURE", "SUCCESS"}))["status"] == "CANCEL"
    freed = submitted_id(await other.post("/mj/submit/imagine", {"prompt": "next"}))
    assert await task_channel(first, freed) == slow_id
    assert_error(
        await one.post("/mj/submit/imagine", {"prompt": "full"}), 503, 23, retry_after=True
    )
    assert await sim_submits(first.http, slow) == cap + 1


async def test_a_channel_at_its_cap_passes_new_work_to_the_next(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    capped, capped_id, _spare, spare_id = await _preferred_and_fallback(
        gateway, simulator_factory, ("capped", "spare"), preferred={"speed_factor": 2.0}
    )
    await gateway.services.pool.execute(
        "UPDATE channels SET max_in_flight = 2 WHERE id = $1", capped_id
    )
    gateway.services.channels.invalidate()
    client = await gateway.client_with_key(balance_units=START)

    ids = await asyncio.gather(*(_imagine(client, f"cat {number}") for number in range(10)))

    channels = [await task_channel(gateway, task_id) for task_id in ids]
    assert channels.count(capped_id) == 2
    assert channels.count(spare_id) == 8
    assert await sim_submits(gateway.http, capped) == 2
    assert await client.balance() == START - 10 * IMAGINE_PRICE


async def test_a_follow_up_is_held_to_its_channel_cap(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    """A follow-up cannot move: at its channel's cap it is 503/23 and charged nothing."""
    gateway = await gateway_factory()
    home = await simulator_factory()
    home_id = await gateway.add_channel(home, name="home")
    await gateway.services.pool.execute(
        "UPDATE channels SET max_in_flight = 1 WHERE id = $1", home_id
    )
    gateway.services.channels.invalidate()
    client = await gateway.client_with_key(balance_units=START)
    parent = await imagine_done(client)
    stalled = await _imagine(client, "a fox [[sim:stall]]")  # takes the only place, and keeps it
    balance = await client.balance()
    upscale = {"taskId": parent["id"], "customId": button(parent, "U1")}

    assert_error(await client.post("/mj/submit/action", upscale), 503, 23, retry_after=True)
    assert await client.balance() == balance
    assert await sim_requests(gateway.http, home, "submit/action") == 0

    await client.post(f"/mj/task/{stalled}/cancel", {})
    assert (await client.wait_for(stalled, {"CANCEL", "FAILURE", "SUCCESS"}))["status"] == "CANCEL"
    upscaled = submitted_id(await client.post("/mj/submit/action", upscale))
    assert await task_channel(gateway, upscaled) == home_id


async def test_a_crashed_replica_holds_its_place_only_until_the_hold_sweep(
    gateway_factory: StartGateway,
    gateway_process_factory: StartGatewayProcess,
    simulator_factory: StartSimulator,
) -> None:
    """A replica killed while sending a submit leaves a SUBMITTING task on its place; the hold
    sweep resolves it at the hold deadline, and the place is free again."""
    gateway = await gateway_factory()
    sim = await simulator_factory(faults={"slow_answer_s": 30.0})
    sim_id = await gateway.add_channel(sim, name="only")
    pool = gateway.services.pool
    await pool.execute("UPDATE channels SET max_in_flight = 1 WHERE id = $1", sim_id)
    gateway.services.channels.invalidate()
    client = await gateway.client_with_key(balance_units=START)
    doomed = await gateway_process_factory(
        GATEWAY_UPSTREAM__MAX_ATTEMPTS="1",
        GATEWAY_UPSTREAM__CONNECT_TIMEOUT_S="1",
        GATEWAY_UPSTREAM__SUBMIT_TIMEOUT_S="20",
        GATEWAY_RELAY__HOLD_DEADLINE_S="22",
    )
    async with httpx.AsyncClient(base_url=doomed.base_url, timeout=30.0) as http:
        sending = asyncio.create_task(
            http.post(
                "/mj/submit/imagine", json={"prompt": "a fox [[sim:slow]]"}, headers=client.headers
            )
        )

        async def reached() -> bool:
            return await sim_requests(gateway.http, sim, "submit/imagine") == 1

        await _eventually(reached, "the submit reaches the channel")
        await doomed.kill()
        with contextlib.suppress(httpx.HTTPError):
            await sending

    assert_error(await client.post("/mj/submit/imagine", {"prompt": "no room"}), 503, 23)
    await pool.execute(  # its deadline comes now rather than 22 s from now
        "UPDATE holds SET deadline = now() WHERE status = 'OPEN'"
        " AND task_id = (SELECT id FROM tasks WHERE prompt = 'a fox [[sim:slow]]')"
    )

    async def swept() -> bool:
        statuses = await pool.fetch("SELECT status FROM tasks WHERE prompt = 'a fox [[sim:slow]]'")
        return [row["status"] for row in statuses] == ["REJECTED"]

    await _eventually(swept, "the sweep resolves the dead replica's submit")
    assert await task_channel(gateway, await _imagine(client, "room again")) == sim_id
    assert await client.balance() == START - IMAGINE_PRICE
