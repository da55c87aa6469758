"""The newer task kinds through the gateway: videos (new, extend, picking one, animate), edits
and retextures, each priced as its own action and refunded once when it fails; their videos and
single images served under the gateway's own signed URLs, with byte ranges for videos."""

from __future__ import annotations

import io
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from tests.api.helpers import (
    IMAGINE_PRICE,
    RED,
    UPSCALE_PRICE,
    assert_error,
    assert_no_upstream_host,
    button,
    imagine_done,
    ledger_rows,
    metric_value,
    scrape,
    sim_requests,
    sim_task,
    start_sim,
    submitted_id,
    upstream_id,
)
from tests.conftest import Client, Gateway, StartGateway, StartSimulator

VIDEO_PRICE = 8 * IMAGINE_PRICE
START = 100 * IMAGINE_PRICE
DONE = {"SUCCESS", "FAILURE", "CANCEL"}


async def _trueai(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, flavour: str = "trueai"
) -> tuple[Gateway, Client, Any]:
    gateway = await gateway_factory()
    simulator = await start_sim(simulator_factory, flavour=flavour)
    await gateway.add_channel(simulator, name=flavour, flavour=flavour)
    return gateway, await gateway.client_with_key(balance_units=START), simulator


async def _done(client: Client, response: httpx.Response) -> dict[str, Any]:
    task = await client.wait_for(submitted_id(response), DONE)
    assert task["status"] == "SUCCESS", task
    return task


def _assert_signed(gateway: Gateway, url: str, task_id: str, part: str) -> None:
    parsed = httpx.URL(url)
    assert str(parsed.copy_with(query=None)) == f"{gateway.base_url}/mj/image/{task_id}/{part}"
    assert parsed.params["sig"], url


async def test_a_video_is_charged_per_video_and_plays_from_the_gateways_own_urls(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, client, simulator = await _trueai(gateway_factory, simulator_factory)
    body = {"prompt": "waves --relax", "image": RED, "batchSize": 2, "motion": "high"}
    video = await _done(client, await client.post("/mj/submit/video", body))

    assert await client.balance() == START - VIDEO_PRICE * 2 // 4 // 2  # relax: x0.5
    assert (video["action"], video["prompt"], video["description"]) == (
        "VIDEO",
        "waves --relax",
        "/video waves --relax",
    )
    assert len(video["videoUrls"]) == 2
    assert video["videoUrl"] == video["videoUrls"][0]["url"]
    for number, item in enumerate(video["videoUrls"], 1):
        _assert_signed(gateway, item["url"], video["id"], f"video-{number}")
        _assert_signed(gateway, item["thumbnail"], video["id"], f"video-{number}")
        assert httpx.URL(item["thumbnail"]).params["size"] == "thumb"
    assert "imageUrls" not in video
    assert_no_upstream_host(simulator, video)

    async with httpx.AsyncClient() as browser:
        whole = await browser.get(video["videoUrl"])
        assert whole.status_code == 200
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.content[4:8] == b"ftyp"
        with av.open(io.BytesIO(whole.content)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert sum(1 for _ in container.decode(stream)) > 1
        ranged = await browser.get(video["videoUrl"], headers={"Range": "bytes=100-199"})
        assert ranged.status_code == 206
        assert ranged.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
        assert ranged.content == whole.content[100:200]
        thumbnail = await browser.get(video["videoUrls"][1]["thumbnail"])
        assert Image.open(io.BytesIO(thumbnail.content)).format == "WEBP"
        forged = video["videoUrls"][1]["url"].replace("/video-2?", "/video-1?")
        assert (await browser.get(forged)).status_code == 404


async def test_extend_and_pick_one_video_are_follow_ups_priced_as_their_actions(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, client, simulator = await _trueai(gateway_factory, simulator_factory)
    video = await _done(
        client, await client.post("/mj/submit/video", {"prompt": "w", "image": RED})
    )
    spent = VIDEO_PRICE

    extend = {"prompt": "further", "action": "extend", "taskId": video["id"], "index": 2}
    extended = await _done(client, await client.post("/mj-turbo/mj/submit/video", extend))
    spent += VIDEO_PRICE  # a follow-up: in its parent's mode, whatever the path says
    assert (extended["action"], len(extended["videoUrls"])) == ("VIDEO", 4)
    upstream = await sim_task(gateway, simulator, extended["id"])
    assert (upstream.mode.value, upstream.parent_id) == (
        "FAST",
        await upstream_id(gateway, video["id"]),
    )

    pick = {"taskId": video["id"], "customId": button(video, "U3")}
    single = await _done(client, await client.post("/mj/submit/action", pick))
    spent += UPSCALE_PRICE
    assert (single["action"], len(single["videoUrls"])) == ("UPSCALE", 1)
    assert await client.balance() == START - spent

    grid = await imagine_done(client)
    spent += IMAGINE_PRICE
    not_a_video = await client.post("/mj/submit/video", {**extend, "taskId": grid["id"]})
    assert "not a video" in assert_error(not_a_video, 400, 21)["description"]
    other = await gateway.client_with_key(name="bob", balance_units=START)
    assert_error(await other.post("/mj/submit/video", extend), 404, 21)
    assert await client.balance() == START - spent
    assert await other.balance() == START


async def test_animate_on_an_upscale_starts_a_video_charged_as_one(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    _, client, _ = await _trueai(gateway_factory, simulator_factory, "plus")
    grid = await imagine_done(client)
    upscale = await _done(
        client,
        await client.post(
            "/mj/submit/action", {"taskId": grid["id"], "customId": button(grid, "U1")}
        ),
    )
    animate = {"taskId": upscale["id"], "customId": button(upscale, "Animate (High motion)")}
    video = await _done(client, await client.post("/mj/submit/action", animate))
    assert (video["action"], len(video["videoUrls"])) == ("VIDEO", 4)
    assert await client.balance() == START - IMAGINE_PRICE - UPSCALE_PRICE - VIDEO_PRICE


@pytest.mark.parametrize(
    ("path", "action", "command"),
    [
        ("/mj/submit/edits", "EDIT", "edit"),
        ("/mj/submit/edit", "EDIT", "edit"),
        ("/mj-fast/mj/submit/retexture", "RETEXTURE", "retexture"),
    ],
)
async def test_edits_and_retextures_end_as_grids_with_their_single_images(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    path: str,
    action: str,
    command: str,
) -> None:
    gateway, client, simulator = await _trueai(gateway_factory, simulator_factory)
    task = await _done(client, await client.post(path, {"prompt": "gold leaf", "image": RED}))
    assert (task["action"], task["description"]) == (action, f"/{command} gold leaf")
    assert await client.balance() == START - IMAGINE_PRICE
    assert len(task["imageUrls"]) == 4
    _assert_signed(gateway, task["imageUrls"][2]["url"], task["id"], "image-3")
    assert_no_upstream_host(simulator, task)
    async with httpx.AsyncClient() as browser:
        single = await browser.get(task["imageUrls"][2]["url"])
        grid = await browser.get(task["imageUrl"])
    assert single.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(single.content)).size == Image.open(io.BytesIO(grid.content)).size


@pytest.mark.parametrize(
    ("path", "body", "price"),
    [
        ("/mj/submit/video", {"prompt": "w [[sim:fail_banned]]", "image": RED}, VIDEO_PRICE),
        ("/mj/submit/edits", {"prompt": "w [[sim:fail_invalid]]", "image": RED}, IMAGINE_PRICE),
        ("/mj/submit/retexture", {"prompt": "[[sim:fail_banned]] w", "image": RED}, IMAGINE_PRICE),
    ],
)
async def test_a_failed_video_or_edit_is_refunded_once(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    path: str,
    body: dict[str, Any],
    price: int,
) -> None:
    gateway, client, _ = await _trueai(gateway_factory, simulator_factory)
    before = await scrape(gateway)
    task = await client.wait_for(submitted_id(await client.post(path, body)), DONE)
    assert task["status"] == "FAILURE", task
    assert await client.balance() == START
    assert await ledger_rows(gateway, task["id"], "REFUND") == 1
    charged, action = await gateway.services.pool.fetchrow(
        "SELECT price_units, price_action FROM tasks WHERE id = $1", int(task["id"])
    )
    assert charged == price
    usage = (await client.get("/api/me")).json()["usage"]
    assert [(row["action"], row["chargedUnits"], row["refundedUnits"]) for row in usage] == [
        (action, price, price)
    ]
    after = await scrape(gateway)
    for name, value in (
        ("gateway_tasks_submitted_total", 1),
        ("gateway_quota_refunded_units_total", price),
    ):
        moved = metric_value(after, name, action=action) - metric_value(before, name, action=action)
        assert moved == value, name


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "w"}, "image"),
        ({"prompt": "w", "image": RED, "motion": "wild"}, "motion"),
        ({"prompt": "w", "image": RED, "batchSize": 3}, "batchSize"),
        ({"prompt": "w", "image": RED, "videoType": "vid_9"}, "videoType"),
        ({"prompt": "w", "image": "ftp://example.com/a.png"}, "image"),
        ({"prompt": "w", "image": "data:image/png;base64,AAAA"}, "image"),
        ({"prompt": "w", "action": "extend"}, "taskId"),
        ({"prompt": "w", "action": "extend", "taskId": "1", "image": RED}, "image"),
        ({"prompt": "w", "action": "extend", "taskId": "1", "index": 4}, "index"),
        ({"prompt": "w", "action": "shrink", "taskId": "1"}, "action"),
        ({"prompt": " ", "image": RED}, "prompt"),
        ({"image": RED}, "prompt"),
    ],
)
async def test_a_bad_video_request_is_400_21_and_costs_nothing(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    body: dict[str, Any],
    field: str,
) -> None:
    gateway, client, simulator = await _trueai(gateway_factory, simulator_factory)
    refused = assert_error(await client.post("/mj/submit/video", body), 400, 21)
    assert field in refused["description"], refused
    assert await client.balance() == START
    assert await sim_requests(gateway.http, simulator, "submit/video") == 0


async def test_edits_where_no_channel_offers_them_are_refused_before_any_charge(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, client, simulator = await _trueai(gateway_factory, simulator_factory, "plus")
    for path in ("/mj/submit/edits", "/mj/submit/retexture"):
        refused = await client.post(path, {"prompt": "gold", "image": RED})
        assert_error(refused, 400, 21)
    video = await _done(
        client, await client.post("/mj/submit/video", {"prompt": "w", "image": RED})
    )
    assert video["action"] == "VIDEO"
    assert await client.balance() == START - VIDEO_PRICE
    assert await sim_requests(gateway.http, simulator, "submit/edits") == 0


async def test_a_video_reroll_is_another_batch_priced_and_named_as_a_video(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    _, client, _ = await _trueai(gateway_factory, simulator_factory)
    body = {"prompt": "w", "image": RED, "batchSize": "2"}  # as a web form sends it
    video = await _done(client, await client.post("/mj/submit/video", body))
    reroll = {"taskId": video["id"], "customId": button(video, prefix="MJ::JOB::reroll::")}
    again = await _done(client, await client.post("/mj/submit/action", reroll))

    assert (again["action"], len(again["videoUrls"])) == ("VIDEO", 2)
    assert await client.balance() == START - 2 * (VIDEO_PRICE // 2)
    extend = {"prompt": "on", "action": "extend", "taskId": again["id"], "index": "1"}
    assert (await _done(client, await client.post("/mj/submit/video", extend)))["action"] == "VIDEO"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/mj/submit/video", {"prompt": "w", "image": "http://127.0.0.1:9/a.png"}),
        ("/mj/submit/video", {"prompt": "w", "image": RED, "endImage": "http://[::1]/b.png"}),
        ("/mj/submit/edits", {"prompt": "w", "image": "http://169.254.169.254/latest/x.png"}),
        ("/mj/submit/retexture", {"prompt": "w", "image": "http://10.0.0.7/x.png"}),
    ],
)
async def test_an_image_url_at_a_private_address_is_refused_before_any_charge(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    path: str,
    body: dict[str, Any],
) -> None:
    gateway, client, simulator = await _trueai(gateway_factory, simulator_factory)
    refused = assert_error(await client.post(path, body), 400, 21)
    assert "private" in refused["description"], refused
    assert await client.balance() == START
    assert await sim_requests(gateway.http, simulator, path.rsplit("/mj/", 1)[1]) == 0
