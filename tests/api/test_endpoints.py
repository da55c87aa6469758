"""Every /mj submit endpoint through the gateway to a simulator channel, balance after each step."""

from __future__ import annotations

import io
import json

import httpx
from PIL import Image

from gateway.simulator import RunningSimulator
from tests.api.helpers import (
    BLUE,
    KEYCAPS,
    PRICE,
    RED,
    START_BALANCE,
    assert_error,
    assert_no_upstream_host,
    assert_own_image_url,
    button,
    numbered_parts,
    sim_routes,
    sim_task,
    start,
    submit,
    submitted_id,
    succeed,
    upstream_id,
)
from tests.conftest import StartGateway


async def test_imagine_then_every_follow_up_form(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    balance = START_BALANCE

    imagine_id = await submit(client, "/mj/submit/imagine", {"prompt": "a lighthouse at dusk"})
    balance -= PRICE["mj_imagine"]
    assert await client.balance() == balance
    grid = await succeed(client, imagine_id)
    assert grid["action"] == "IMAGINE"
    assert grid["prompt"] == "a lighthouse at dusk"
    assert_own_image_url(gateway, simulator, grid)
    upstream_grid = await sim_task(gateway, simulator, imagine_id)
    assert grid["buttons"] == [b.to_json() for b in upstream_grid.buttons]
    assert [b["label"] for b in grid["buttons"]] == [
        *("U1", "U2", "U3", "U4"),
        "",
        *("V1", "V2", "V3", "V4"),
    ]
    assert await client.balance() == balance

    u1 = button(grid, label="U1")
    upscale_id = await submit(client, "/mj/submit/action", {"taskId": imagine_id, "customId": u1})
    balance -= PRICE["mj_upscale"]
    assert await client.balance() == balance
    upscale = await succeed(client, upscale_id)
    assert upscale["action"] == "UPSCALE"
    assert_own_image_url(gateway, simulator, upscale)
    upstream_upscale = await sim_task(gateway, simulator, upscale_id)
    assert upstream_upscale.parent_id == upstream_grid.id
    assert upstream_upscale.properties["customId"] == u1
    assert "Custom Zoom" in [b["label"] for b in upscale["buttons"]]

    change = {"taskId": imagine_id, "action": "VARIATION", "index": 1}
    variation_id = await submit(client, "/mj/submit/change", change)
    balance -= PRICE["mj_variation"]
    assert await client.balance() == balance
    variation = await succeed(client, variation_id)
    assert variation["action"] == "VARIATION"
    upstream_variation = await sim_task(gateway, simulator, variation_id)
    assert upstream_variation.parent_id == upstream_grid.id
    assert upstream_variation.properties["customId"] == button(grid, label="V1")

    simple = {"content": f"{imagine_id} U2"}
    u2_id = await submit(client, "/mj/submit/simple-change", simple)
    balance -= PRICE["mj_upscale"]
    assert await client.balance() == balance
    u2 = await succeed(client, u2_id)
    assert u2["action"] == "UPSCALE"
    upstream_u2 = await sim_task(gateway, simulator, u2_id)
    assert upstream_u2.parent_id == upstream_grid.id
    assert upstream_u2.properties["customId"] == button(grid, label="U2")

    reroll = button(grid, prefix="MJ::JOB::reroll::0::")
    assert reroll.endswith("::SOLO")
    reroll_id = await submit(
        client, "/mj/submit/action", {"taskId": imagine_id, "customId": reroll}
    )
    balance -= PRICE["mj_reroll"]
    assert await client.balance() == balance
    rerolled = await succeed(client, reroll_id)
    assert_own_image_url(gateway, simulator, rerolled)
    upstream_reroll = await sim_task(gateway, simulator, reroll_id)
    assert upstream_reroll.parent_id == upstream_grid.id
    assert upstream_reroll.properties["customId"] == reroll

    assert len({imagine_id, upscale_id, variation_id, u2_id, reroll_id}) == 5
    await gateway.services.poller.run_once()
    assert await client.balance() == balance == START_BALANCE - 400_000


async def test_blend_two_images(gateway_factory: StartGateway, simulator: RunningSimulator) -> None:
    gateway, client = await start(gateway_factory, simulator)
    task_id = await submit(client, "/mj/submit/blend", {"base64Array": [RED, BLUE]})
    assert await client.balance() == START_BALANCE - PRICE["mj_blend"]
    task = await succeed(client, task_id)
    assert task["action"] == "BLEND"
    assert [b["label"] for b in task["buttons"]][:4] == ["U1", "U2", "U3", "U4"]
    assert_own_image_url(gateway, simulator, task)
    upstream = await sim_task(gateway, simulator, task_id)
    assert upstream.recipe.aspect == 1.0  # SQUARE by default
    assert await client.balance() == START_BALANCE - PRICE["mj_blend"]


async def test_describe_gives_four_numbered_suggestions(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    task_id = await submit(client, "/mj/submit/describe", {"base64": RED})
    assert await client.balance() == START_BALANCE - PRICE["mj_describe"]
    task = await succeed(client, task_id)
    assert task["action"] == "DESCRIBE"
    parts = numbered_parts(task["prompt"])
    assert len(parts) == 4, task["prompt"]
    for keycap, part in zip(KEYCAPS, parts, strict=False):
        assert part.startswith(keycap), parts
        assert len(part) > len(keycap) + 1, parts
    assert task["prompt"] == (await sim_task(gateway, simulator, task_id)).prompt
    assert [b["customId"] for b in task["buttons"]][:4] == [
        f"MJ::Job::PicReader::{n}" for n in range(1, 5)
    ]
    assert_no_upstream_host(simulator, task)
    assert await client.balance() == START_BALANCE - PRICE["mj_describe"]


async def test_shorten(gateway_factory: StartGateway, simulator: RunningSimulator) -> None:
    _, client = await start(gateway_factory, simulator)
    prompt = "a very long and rather wordy prompt about a quiet harbour town at sunrise --ar 3:2"
    task_id = await submit(client, "/mj/submit/shorten", {"prompt": prompt})
    assert await client.balance() == START_BALANCE - PRICE["mj_shorten"]
    task = await succeed(client, task_id)
    assert task["action"] == "SHORTEN"
    assert task["prompt"] == prompt
    assert len(numbered_parts(task["promptEn"])) == 5, task["promptEn"]
    assert [b["customId"] for b in task["buttons"]] == [
        f"MJ::Job::PromptAnalyzer::{n}" for n in range(1, 6)
    ]
    assert_no_upstream_host(simulator, task)
    assert await client.balance() == START_BALANCE - PRICE["mj_shorten"]


async def test_face_swap(gateway_factory: StartGateway, simulator: RunningSimulator) -> None:
    gateway, client = await start(gateway_factory, simulator)
    body = {"sourceBase64": RED, "targetBase64": BLUE}
    task_id = await submit(client, "/mj/insight-face/swap", body)
    assert await client.balance() == START_BALANCE - PRICE["mj_swap_face"]
    task = await succeed(client, task_id)
    assert task["action"] == "SWAP_FACE"
    assert task["buttons"] == []
    assert_own_image_url(gateway, simulator, task)
    image = await gateway.http.get(task["imageUrl"])
    assert image.status_code == 200
    assert Image.open(io.BytesIO(image.content)).format == "PNG"
    assert await client.balance() == START_BALANCE - PRICE["mj_swap_face"]


async def test_upload_returns_a_list_of_urls(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    before = await sim_routes(gateway.http, simulator)
    response = await client.post("/mj/submit/upload-discord-images", {"base64Array": [RED, BLUE]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 1, body
    urls = body["result"]
    assert isinstance(urls, list), body
    assert len(urls) == 2, body
    assert len(set(urls)) == 2, body
    for url in urls:
        assert httpx.URL(url).scheme in ("http", "https"), url
    after = await sim_routes(gateway.http, simulator)
    assert after.get("submit/upload-discord-images", 0) == 1 + before.get(
        "submit/upload-discord-images", 0
    )
    assert await client.balance() == START_BALANCE - 2 * PRICE["mj_upload"]  # per image


async def test_image_seed_asks_the_tasks_channel(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": "a koi pond"})
    await succeed(client, task_id)
    before = await sim_routes(gateway.http, simulator)
    response = await client.get(f"/mj/task/{task_id}/image-seed")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 1, body
    assert isinstance(body["result"], str), body
    assert body["result"].isdigit(), body
    upstream = simulator.engine.image_seed(await upstream_id(gateway, task_id))
    assert body["result"] == upstream.result
    after = await sim_routes(gateway.http, simulator)
    assert after["task/image-seed"] == before.get("task/image-seed", 0) + 1
    assert await client.balance() == START_BALANCE - PRICE["mj_imagine"]


async def test_image_seed_of_a_task_that_makes_no_image_says_so(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    shortened = await submit(client, "/mj/submit/shorten", {"prompt": "a koi pond at dusk"})
    await succeed(client, shortened)
    before = await sim_routes(gateway.http, simulator)
    answer = await client.get(f"/mj/task/{shortened}/image-seed")
    assert "SHORTEN" in assert_error(answer, 400, 21)["description"]
    assert "关联任务状态错误" not in answer.text
    assert (await sim_routes(gateway.http, simulator)).get("task/image-seed", 0) == before.get(
        "task/image-seed", 0
    )


async def test_every_task_object_carries_final_zh_prompt(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    _, client = await start(gateway_factory, simulator)
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": "a koi pond"})
    assert (await client.get(f"/mj/task/{task_id}/fetch")).json()["properties"][
        "finalZhPrompt"
    ] == ""
    done = await succeed(client, task_id)
    assert done["properties"]["finalZhPrompt"] == ""
    listed = (await client.get("/mj/task/list")).json()
    assert all(t["properties"]["finalZhPrompt"] == "" for t in listed)


async def test_list_by_condition_keeps_the_order_asked(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, alice = await start(gateway_factory, simulator)
    bob = await gateway.client_with_key(name="bob")
    first, second, third = [
        await submit(alice, "/mj/submit/imagine", {"prompt": f"picture {n}"}) for n in range(3)
    ]
    foreign = await submit(bob, "/mj/submit/imagine", {"prompt": "bob's picture"})
    for task_id in (first, second, third):
        await succeed(alice, task_id)
    await succeed(bob, foreign)

    asked = [third, "1000000000000000", first, foreign, "not-a-task", second]
    response = await alice.post("/mj/task/list-by-condition", {"ids": asked})
    assert response.status_code == 200, response.text
    tasks = response.json()
    assert [t["id"] for t in tasks] == [third, first, second]
    assert [t["prompt"] for t in tasks] == ["picture 2", "picture 0", "picture 1"]
    assert all(t["status"] == "SUCCESS" for t in tasks)
    assert_no_upstream_host(simulator, tasks)

    response = await alice.post("/mj/task/list-by-condition", {"ids": [second, first]})
    assert [t["id"] for t in response.json()] == [second, first]
    assert await alice.balance() == START_BALANCE - 3 * PRICE["mj_imagine"]
    assert await bob.balance() == START_BALANCE - PRICE["mj_imagine"]


async def test_task_list_is_the_callers_newest_first(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, alice = await start(gateway_factory, simulator)
    bob = await gateway.client_with_key(name="bob")
    ids = []
    for n in range(3):
        ids.append(await submit(alice, "/mj/submit/imagine", {"prompt": f"alice {n}"}))
        if n == 1:
            await submit(bob, "/mj/submit/imagine", {"prompt": "bob"})
    for task_id in ids:
        await succeed(alice, task_id)

    response = await alice.get("/mj/task/list")
    assert response.status_code == 200, response.text
    tasks = response.json()
    assert [t["id"] for t in tasks] == ids[::-1]
    assert [t["prompt"] for t in tasks] == ["alice 2", "alice 1", "alice 0"]
    assert_no_upstream_host(simulator, tasks)
    bobs = (await bob.get("/mj/task/list")).json()
    assert [t["prompt"] for t in bobs] == ["bob"]
    assert await alice.balance() == START_BALANCE - 3 * PRICE["mj_imagine"]


async def test_state_comes_back_byte_for_byte(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    state = '  {"order": 42, \'note\': "naïve café" } 状态 🦊 e\u0301 \\n\t "end"  '
    raw = json.dumps({"prompt": "a fox", "state": state}, ensure_ascii=False).encode()
    response = await gateway.http.post(
        "/mj/submit/imagine",
        content=raw,
        headers={**client.headers, "Content-Type": "application/json"},
    )
    task_id = submitted_id(response)
    task = await succeed(client, task_id)
    assert task["state"] == state
    listed = (await client.post("/mj/task/list-by-condition", {"ids": [task_id]})).json()
    assert listed[0]["state"] == state
    recent = (await client.get("/mj/task/list")).json()
    assert recent[0]["state"] == state
    assert await client.balance() == START_BALANCE - PRICE["mj_imagine"]


async def test_task_objects_never_show_upstream_ids_or_host(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    """Contract, Task ids: the upstream's id and the channel are stored beside it, never shown."""
    gateway, client = await start(gateway_factory, simulator)
    imagine_id = await submit(client, "/mj/submit/imagine", {"prompt": "an astronaut"})
    grid = await succeed(client, imagine_id)
    u3 = {"taskId": imagine_id, "customId": button(grid, label="U3")}
    ids = [
        imagine_id,
        await submit(client, "/mj/submit/action", u3),
        await submit(client, "/mj/submit/blend", {"base64Array": [RED, BLUE]}),
        await submit(client, "/mj/submit/describe", {"base64": BLUE}),
        await submit(client, "/mj/insight-face/swap", {"sourceBase64": BLUE, "targetBase64": RED}),
    ]
    tasks = [await succeed(client, task_id) for task_id in ids]
    hidden = {await upstream_id(gateway, task_id) for task_id in ids}
    assert not hidden & set(ids)
    leaks: dict[str, list[str]] = {}
    for task in tasks:
        assert_no_upstream_host(simulator, task)
        fields = [k for k, v in task.items() if any(h in json.dumps(v) for h in hidden)]
        if fields:
            leaks[task["action"]] = fields
    listed = await client.post("/mj/task/list-by-condition", {"ids": ids})
    assert [t["id"] for t in listed.json()] == ids
    assert leaks == {}, f"upstream task ids shown in these task fields: {leaks}"
