"""What a task object says, from its submit on: the client's own prompt (speed flags and all), the
command that made it as its description, no upstream URL anywhere, a change's asked-for action,
and a modal's prefill."""

from __future__ import annotations

import pytest

from gateway.tasks.views import without_leading_urls
from tests.api.helpers import (
    BLUE,
    RED,
    button,
    imagine_done,
    sim_task,
    start_sim,
    submitted_id,
)
from tests.conftest import StartGateway, StartSimulator

START = 10_000_000


@pytest.mark.parametrize("flavour", ["plus", "open-source"])
async def test_a_change_shows_the_action_asked_and_the_up_command(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, flavour: str
) -> None:
    gateway = await gateway_factory()
    simulator = await start_sim(simulator_factory, flavour=flavour)
    await gateway.add_channel(simulator, flavour=flavour)
    client = await gateway.client_with_key(balance_units=START)
    grid = await imagine_done(client)

    reroll = {"taskId": grid["id"], "customId": button(grid, prefix="MJ::JOB::reroll::")}
    asks = [
        ("/mj/submit/change", {"taskId": grid["id"], "action": "REROLL"}, "REROLL", "R"),
        ("/mj/submit/action", reroll, "IMAGINE", "R"),  # a button: named after its parent
        (
            "/mj/submit/change",
            {"taskId": grid["id"], "action": "UPSCALE", "index": 2},
            "UPSCALE",
            "U2",
        ),
        ("/mj/submit/simple-change", {"content": f"{grid['id']} V3"}, "VARIATION", "V3"),
        (
            "/mj/submit/action",
            {"taskId": grid["id"], "customId": button(grid, "V1")},
            "VARIATION",
            "V1",
        ),
    ]
    for path, body, action, letters in asks:
        task_id = submitted_id(await client.post(path, body))
        expected = (action, f"/up {grid['id']} {letters}")
        fresh = (await client.get(f"/mj/task/{task_id}/fetch")).json()
        assert (fresh["action"], fresh["description"]) == expected, fresh
        done = await client.wait_for(task_id, {"SUCCESS", "FAILURE"})
        assert done["status"] == "SUCCESS", done
        assert (done["action"], done["description"]) == expected, done


async def test_the_prompt_stays_the_clients_and_no_upstream_url_shows(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    simulator = await start_sim(simulator_factory)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START)
    prompt = "https://example.com/mine.png a quiet pond --relax --ar 3:2"
    body = {"prompt": prompt, "base64Array": [RED, BLUE]}
    task_id = submitted_id(await client.post("/mj/submit/imagine", body))

    fresh = (await client.get(f"/mj/task/{task_id}/fetch")).json()
    assert fresh["prompt"] == prompt
    assert fresh["description"] == f"/imagine {prompt}"
    assert fresh["promptEn"] == "https://example.com/mine.png a quiet pond --ar 3:2"

    grid = await client.wait_for(task_id, {"SUCCESS"})
    upstream = await sim_task(gateway, simulator, task_id)
    assert upstream.prompt_en is not None
    assert simulator.base_url in upstream.prompt_en  # the upstream shows its upload URLs...
    for shown in (grid, (await client.get("/mj/task/list")).json()[0]):
        assert shown["prompt"] == prompt  # ...the gateway never does
        assert shown["promptEn"] == "https://example.com/mine.png a quiet pond --ar 3:2"
        assert shown["properties"]["finalPrompt"] == shown["promptEn"]
        assert shown["description"] == f"/imagine {prompt}"
        assert simulator.base_url.split("://")[1] not in str(shown)

    upscale_id = submitted_id(
        await client.post("/mj/submit/action", {"taskId": task_id, "customId": button(grid, "U1")})
    )
    upscale = await client.wait_for(upscale_id, {"SUCCESS"})
    assert upscale["prompt"] == prompt
    assert upscale["description"] == f"/up {task_id} U1"
    assert simulator.base_url.split("://")[1] not in str(upscale)


async def test_a_modal_task_fetch_carries_what_its_answer_carried(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    simulator = await start_sim(simulator_factory)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START)
    body = {"prompt": "a misty harbour", "base64Array": [RED]}
    grid_id = submitted_id(await client.post("/mj/submit/imagine", body))
    grid = await client.wait_for(grid_id, {"SUCCESS"})
    u1 = {"taskId": grid_id, "customId": button(grid, "U1")}
    upscale_id = submitted_id(await client.post("/mj/submit/action", u1))
    upscale = await client.wait_for(upscale_id, {"SUCCESS"})

    zoom = button(upscale, "Custom Zoom")
    answer = await client.post("/mj/submit/action", {"taskId": upscale_id, "customId": zoom})
    modal_id = submitted_id(answer, code=21)
    said = answer.json()["properties"]
    host = simulator.base_url.split("://")[1]
    assert said["finalPrompt"] == "a misty harbour"
    for _ in range(2):  # as submitted, then after the poller has read the upstream's
        fetched = (await client.get(f"/mj/task/{modal_id}/fetch")).json()
        assert fetched["status"] == "MODAL"
        assert fetched["prompt"] == "a misty harbour"
        assert fetched["description"] == f"/action {upscale_id} {zoom}"
        assert fetched["properties"]["finalPrompt"] == said["finalPrompt"]
        assert fetched["properties"]["remix"] is said["remix"] is True
        assert host not in str(fetched)
        await gateway.services.poller.run_once()

    confirm = {"taskId": modal_id, "prompt": "a misty harbour --zoom 2"}
    zoomed = await client.wait_for(
        submitted_id(await client.post("/mj/submit/modal", confirm)), {"SUCCESS"}
    )
    assert zoomed["description"] == f"/action {upscale_id} {zoom}"
    assert host not in str(zoomed)


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("https://up.test/a.png a quiet pond", 1),
        ("<https://up.test/a.png> https://up.test/b.png a pond", 2),
        ("https://up.test/a.png https://mine.test/b.png a pond", 1),
        ("a quiet pond", 2),
        ("cat", 3),
        ("https://up.test/a.png https://up.test/b.png", 2),
    ],
)
async def test_the_database_takes_off_leading_links_as_the_gateway_does(
    gateway_factory: StartGateway, text: str, urls: int
) -> None:
    gateway = await gateway_factory()
    found = await gateway.services.pool.fetchval(
        "SELECT without_leading_urls($1, $2::SMALLINT)", text, urls
    )
    assert found == without_leading_urls(text, urls)
