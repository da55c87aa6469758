"""Fetches of ended tasks come from memory, and only where that can never show an older state:
not before the task ends, not while its media copy is pending, never to another user. The
process that writes an end shares the answer with every process before anyone asks."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from gateway.storage.redis_keys import RedisKeys
from gateway.tasks.ended import EndedAnswers
from tests.api.helpers import metric_value, scrape, start, submit
from tests.conftest import Client, Gateway, StartGateway, StartSimulator
from tests.support import subscribed, until

FETCHES = "gateway_ended_task_fetches_total"


async def _counts(gateway: Gateway) -> tuple[float, float]:
    text = await scrape(gateway)
    return metric_value(text, FETCHES, source="memory"), metric_value(
        text, FETCHES, source="database"
    )


async def _imagine(client: Client) -> str:
    return await submit(client, "/mj/submit/imagine", {"prompt": "a quiet harbour"})


async def test_an_ended_task_is_answered_from_memory_and_only_to_its_owner(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, client = await start(gateway_factory, await simulator_factory())
    task_id = await _imagine(client)
    await client.wait_for(task_id, {"SUCCESS"})
    first = await client.get(f"/mj/task/{task_id}/fetch")
    assert first.headers["content-type"] == "application/json"
    memory, database = await _counts(gateway)
    answers = [(await client.get(f"/mj/task/{task_id}/fetch")).content for _ in range(5)]
    assert answers == [first.content] * 5
    assert await _counts(gateway) == (memory + 5, database)

    other = await gateway.client_with_key(name="bob")
    assert (await other.get(f"/mj/task/{task_id}/fetch")).status_code == 404
    assert await _counts(gateway) == (memory + 5, database)


async def test_an_open_task_is_read_from_the_database_every_time(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, client = await start(gateway_factory, await simulator_factory())
    task_id = await _imagine(client)
    memory, database = await _counts(gateway)
    seen = []
    while not seen or seen[-1] != "SUCCESS":
        seen.append((await client.get(f"/mj/task/{task_id}/fetch")).json()["status"])
    assert len(set(seen)) > 1, seen  # it was watched while it ran
    assert await _counts(gateway) == (memory, database + 1)  # the first fetch of it ended


async def test_a_task_whose_media_copy_is_pending_is_read_from_the_database(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    """With media kept, a SUCCESS queues a copy, which adds parts to the answer once made: until
    then the answer is not kept. (This gateway's copier waits an hour between rounds.)"""
    gateway = await gateway_factory(media={"keep": True, "copy_every_s": 3600})
    await gateway.add_channel(await simulator_factory())
    client = await gateway.client_with_key()
    task_id = await _imagine(client)
    await client.wait_for(task_id, {"SUCCESS"})
    pool = gateway.services.pool
    status = await pool.fetchval("SELECT status FROM media_copies WHERE task_id = $1", int(task_id))
    assert status == "PENDING"
    memory, database = await _counts(gateway)
    for _ in range(3):
        assert (await client.get(f"/mj/task/{task_id}/fetch")).status_code == 200
    assert await _counts(gateway) == (memory, database)  # neither kept nor counted as ended

    await pool.execute("UPDATE media_copies SET status = 'DONE' WHERE task_id = $1", int(task_id))
    for _ in range(3):
        assert (await client.get(f"/mj/task/{task_id}/fetch")).status_code == 200
    assert await _counts(gateway) == (memory + 2, database + 1)


@contextlib.asynccontextmanager
async def _another_process(gateway: Gateway, listeners: int) -> AsyncIterator[EndedAnswers]:
    """A memory of ended tasks listening as any other process would, once ``listeners`` (it
    among them) listen on the channel."""
    channel = RedisKeys(gateway.settings.redis.key_prefix).ended_answers_channel
    other = EndedAnswers(1_000_000, gateway.services.redis, channel)
    listening = asyncio.create_task(other.listen())
    try:
        await subscribed(gateway.services.redis, channel, listeners)
        yield other
    finally:
        listening.cancel()


@pytest.mark.parametrize("news", ["poll", "callback"])
async def test_an_end_is_shared_with_every_process_before_the_first_fetch(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, news: str
) -> None:
    """Two gateways on one database and Redis (two processes, as workers are); the end is
    written by whichever polls, or by the one the channel calls back. A third listener stands
    for any other process: the answer reaches it, and then both gateways answer the first
    fetches of the task from memory, the same bytes, and still only to its owner."""
    relay = {"poll_interval_s": 3600.0} if news == "callback" else {}
    first = await gateway_factory(callbacks=news == "callback", relay=relay)
    second = await gateway_factory(relay=relay)
    await first.add_channel(await simulator_factory())
    alice = await first.client_with_key()
    async with _another_process(first, listeners=3) as other:
        task_id = int(await _imagine(alice))
        await until(lambda: len(other) == 1, "the end was never shared")
        shared = other.get(task_id, alice.user_id, time.time())
        await asyncio.sleep(0.2)  # the gateways' own listeners took the same message
        memory, database = await _counts(first)
        answers = [
            await gateway.http.get(f"/mj/task/{task_id}/fetch", headers=alice.headers)
            for gateway in (first, second)
        ]
        assert [answer.content for answer in answers] == [shared, shared]
        assert answers[0].json()["status"] == "SUCCESS"
        assert await _counts(first) == (memory + 2, database)

        bob = await second.client_with_key(name="bob")
        assert (await bob.get(f"/mj/task/{task_id}/fetch")).status_code == 404


async def test_a_result_is_shared_once_its_copy_into_the_media_store_is_made(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    """With media kept, a SUCCESS is not final until its copy is made (the copy adds its parts
    to the answer): the answer is shared then, with the stored parts in it."""
    gateway = await gateway_factory(media={"keep": True, "copy_every_s": 0.05})
    await gateway.add_channel(await simulator_factory())
    alice = await gateway.client_with_key()
    async with _another_process(gateway, listeners=2) as other:
        task_id = int(await _imagine(alice))
        await until(lambda: len(other) == 1, "the result was never shared")
        pool = gateway.services.pool
        copy = await pool.fetchval("SELECT status FROM media_copies WHERE task_id = $1", task_id)
        assert copy == "DONE"
        shared = other.get(task_id, alice.user_id, time.time())
        assert shared is not None
        await asyncio.sleep(0.2)  # the gateway's own listener took the same message
        memory, database = await _counts(gateway)
        answer = await alice.get(f"/mj/task/{task_id}/fetch")
        assert answer.content == shared
        assert answer.json()["status"] == "SUCCESS"
        assert await _counts(gateway) == (memory + 1, database)
