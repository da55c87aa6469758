"""Fetches of ended tasks come from memory, and only where that can never show an older state:
not before the task ends, not while its media copy is pending, never to another user."""

from __future__ import annotations

from tests.api.helpers import metric_value, scrape, start, submit
from tests.conftest import Client, Gateway, StartGateway, StartSimulator

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
