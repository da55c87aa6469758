"""The newer task kinds (UPSTREAM.md, "Newer task kinds"): videos with their batch, extend,
upscale and animate buttons, served as real MP4s with byte ranges; edits and retextures as grids;
the four single images of a trueai grid."""

from __future__ import annotations

import io
from typing import Any

import av
import pytest
from PIL import Image

from tests.conftest import StartSimulator
from tests.simulator.helpers import (
    act,
    button,
    connect,
    custom_ids,
    http_client,
    imagine,
    png_data_url,
    submit,
    upscale,
    wait_for,
)

IMAGE_URL = "https://example.com/first-frame.png"


async def _video(http: Any, **fields: Any) -> dict[str, Any]:
    answer = await submit(http, "/mj/submit/video", {"prompt": "waves", **fields})
    assert answer["code"] == 1, answer
    return await wait_for(http, answer["result"])


def _mp4_frames(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        return sum(1 for _ in container.decode(stream))


async def test_a_video_batch_ends_with_its_videos_thumbnails_and_buttons(
    simulator_factory: StartSimulator,
) -> None:
    simulator = await simulator_factory(flavour="trueai")
    async with connect(simulator) as http:
        video = await _video(http, image=png_data_url(), batchSize=2, motion="high")
        assert (video["action"], video["description"]) == ("VIDEO", "/video waves")
        assert len(video["videoUrls"]) == 2
        assert video["imageUrl"] == video["videoUrl"] == video["videoUrls"][0]["url"]
        ids = custom_ids(video)
        assert [i.split("::")[2:4] for i in ids[:2]] == [
            ["video_virtual_upscale", "1"],
            ["video_virtual_upscale", "2"],
        ]
        assert "::reroll::" in ids[2]
        async with http_client() as plain:
            whole = await plain.get(video["videoUrl"])
            assert whole.headers["content-type"] == "video/mp4"
            assert whole.headers["accept-ranges"] == "bytes"
            assert whole.content[4:8] == b"ftyp"
            assert _mp4_frames(whole.content) >= 12
            part = await plain.get(video["videoUrl"], headers={"Range": "bytes=4-11"})
            assert part.status_code == 206
            assert part.content == whole.content[4:12]
            assert part.headers["content-range"] == f"bytes 4-11/{len(whole.content)}"
            beyond = await plain.get(video["videoUrl"], headers={"Range": "bytes=999999-"})
            assert beyond.status_code == 416
            thumbnail = await plain.get(video["videoUrls"][1]["thumbnail"])
            assert Image.open(io.BytesIO(thumbnail.content)).format == "WEBP"
            third = video["videoUrls"][1]["url"].replace("_2.mp4", "_3.mp4")
            assert (await plain.get(third)).status_code == 404


async def test_a_video_upscale_picks_one_and_an_extend_continues_it(
    simulator_factory: StartSimulator,
) -> None:
    simulator = await simulator_factory(flavour="trueai")
    async with connect(simulator) as http:
        video = await _video(http, image=IMAGE_URL)
        picked = await act(http, video, button(video, "::video_virtual_upscale::3::"))
        single = await wait_for(http, picked["result"])
        assert single["action"] == "UPSCALE"
        assert len(single["videoUrls"]) == 1
        extend = {"action": "extend", "taskId": video["id"], "index": 3}
        extended = await _video(http, **extend)
        assert extended["action"] == "VIDEO"
        assert len(extended["videoUrls"]) == 4
        for wrong, code in (({"taskId": "1700000000000999"}, 3), ({"index": 4}, 4)):
            answer = await submit(http, "/mj/submit/video", {"prompt": "w", **extend, **wrong})
            assert answer["code"] == code, answer
        grid = await imagine(http)
        not_video = await submit(
            http, "/mj/submit/video", {"prompt": "w", **extend, "taskId": grid["id"]}
        )
        assert not_video["code"] == 4


async def test_animate_on_an_upscale_starts_a_video(simulator_factory: StartSimulator) -> None:
    simulator = await simulator_factory(flavour="plus")
    async with connect(simulator) as http:
        single = await upscale(http, await imagine(http))
        answer = await act(http, single, button(single, "::animate_low::"))
        video = await wait_for(http, answer["result"])
        assert video["action"] == "VIDEO"
        assert len(video["videoUrls"]) == 4
        assert "imageUrls" not in video


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "prompt不能为空"),
        ({"prompt": "w"}, "image不能为空"),
        ({"prompt": "w", "image": IMAGE_URL, "motion": "medium"}, "motion参数错误"),
        ({"prompt": "w", "image": IMAGE_URL, "batchSize": 3}, "batchSize参数错误"),
        ({"prompt": "w", "image": IMAGE_URL, "videoType": "vid_9"}, "videoType参数错误"),
        ({"prompt": "w", "image": "ftp://example.com/a.png"}, "image参数错误"),
        ({"prompt": "w", "action": "shrink", "taskId": "1"}, "action参数错误，仅支持 extend"),
    ],
)
async def test_video_refuses_what_trueai_refuses(
    simulator_factory: StartSimulator, body: dict[str, Any], message: str
) -> None:
    simulator = await simulator_factory(flavour="trueai")
    async with connect(simulator) as http:
        answer = await submit(http, "/mj/submit/video", body)
    assert (answer["code"], answer["description"]) == (4, message)


@pytest.mark.parametrize(
    ("route", "action", "command"),
    [("edits", "EDIT", "edit"), ("edit", "EDIT", "edit"), ("retexture", "RETEXTURE", "retexture")],
)
async def test_edits_and_retextures_end_as_grids_with_single_images(
    simulator_factory: StartSimulator, route: str, action: str, command: str
) -> None:
    simulator = await simulator_factory(flavour="trueai")
    async with connect(simulator) as http:
        for body in ({"prompt": "x"}, {"image": IMAGE_URL}):
            refused = await submit(http, f"/mj/submit/{route}", body)
            assert (refused["code"], refused["description"]) == (4, "image或prompt不能为空")
        answer = await submit(
            http, f"/mj/submit/{route}", {"prompt": "gold leaf", "image": png_data_url()}
        )
        task = await wait_for(http, answer["result"])
        assert (task["action"], task["description"]) == (action, f"/{command} gold leaf")
        assert len(custom_ids(task)) == 9
        assert len(task["imageUrls"]) == 4
        async with http_client() as plain:
            single = await plain.get(task["imageUrls"][3]["url"])
            grid = await plain.get(task["imageUrl"])
        side = Image.open(io.BytesIO(grid.content)).width
        assert Image.open(io.BytesIO(single.content)).width == side


async def test_only_trueai_splits_grids(simulator_factory: StartSimulator) -> None:
    for flavour, split in (("plus", False), ("trueai", True)):
        simulator = await simulator_factory(flavour=flavour)
        async with connect(simulator) as http:
            grid = await imagine(http)
        assert ("imageUrls" in grid) is split, flavour
