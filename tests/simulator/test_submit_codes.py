"""Submit answers: code 1, validation (4), missing parent (3), banned (24), no account (3)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import StartSimulator
from tests.simulator.helpers import (
    NO_ACCOUNT,
    PARENT_MISSING,
    UNKNOWN_ID,
    connect,
    imagine,
    must_fetch,
    png_data_url,
    submit,
    submit_task,
)

IMAGE = png_data_url()
OTHER_IMAGE = png_data_url((10, 200, 10))

TASK_KINDS: list[tuple[str, dict[str, Any], str]] = [
    ("/mj/submit/imagine", {"prompt": "a quiet harbour at dawn"}, "IMAGINE"),
    ("/mj/submit/imagine", {"prompt": "a cat", "base64Array": [IMAGE]}, "IMAGINE"),
    ("/mj/submit/blend", {"base64Array": [IMAGE, OTHER_IMAGE], "dimensions": "PORTRAIT"}, "BLEND"),
    ("/mj/submit/blend", {"base64Array": [IMAGE] * 5}, "BLEND"),
    ("/mj/submit/describe", {"base64": IMAGE}, "DESCRIBE"),
    ("/mj/submit/shorten", {"prompt": "a long prompt about a castle"}, "SHORTEN"),
    ("/mj/insight-face/swap", {"sourceBase64": IMAGE, "targetBase64": OTHER_IMAGE}, "SWAP_FACE"),
]


@pytest.mark.parametrize(("path", "body", "action"), TASK_KINDS)
async def test_submit_creates_a_task_with_its_action(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], action: str
) -> None:
    answer = await submit(client, path, {**body, "state": "s-1"})
    assert answer["code"] == 1, answer
    assert answer["description"] == "提交成功"
    task = await must_fetch(client, answer["result"])
    assert task["action"] == action
    assert task["state"] == "s-1"
    assert task["status"] in {"NOT_START", "SUBMITTED", "IN_PROGRESS", "SUCCESS"}


VALIDATION: list[tuple[str, dict[str, Any], str | None]] = [
    ("/mj/submit/imagine", {}, "prompt不能为空"),
    ("/mj/submit/imagine", {"prompt": ""}, "prompt不能为空"),
    ("/mj/submit/imagine", {"prompt": "   "}, "prompt不能为空"),
    ("/mj/submit/imagine", {"prompt": None}, "prompt不能为空"),
    ("/mj/submit/shorten", {"prompt": ""}, "prompt不能为空"),
    ("/mj/submit/shorten", {}, "prompt不能为空"),
    ("/mj/submit/blend", {}, "base64List参数错误"),
    ("/mj/submit/blend", {"base64Array": []}, "base64List参数错误"),
    ("/mj/submit/blend", {"base64Array": [IMAGE]}, "base64List参数错误"),
    ("/mj/submit/blend", {"base64Array": [IMAGE] * 6}, "base64List参数错误"),
    ("/mj/submit/blend", {"base64Array": ["not-a-data-url", "neither"]}, None),
    ("/mj/submit/describe", {}, None),
    ("/mj/submit/describe", {"base64": ""}, None),
    ("/mj/submit/describe", {"base64": "not-a-data-url"}, None),
    ("/mj/submit/action", {"customId": "MJ::JOB::upsample::1::x"}, None),
    ("/mj/submit/action", {"taskId": "{id}"}, None),
    ("/mj/submit/action", {"taskId": "{id}", "customId": ""}, None),
    ("/mj/submit/action", {"taskId": "{id}", "customId": "no-such-button"}, None),
    ("/mj/submit/modal", {}, None),
    ("/mj/submit/change", {"action": "UPSCALE", "index": 1}, None),
    ("/mj/submit/change", {"taskId": "{id}", "action": "DESCRIBE", "index": 1}, None),
    ("/mj/submit/simple-change", {"content": "garbage"}, None),
    ("/mj/submit/simple-change", {"content": "{id} U5"}, None),
    ("/mj/submit/simple-change", {"content": "{id}"}, None),
    ("/mj/submit/simple-change", {}, None),
    ("/mj/submit/upload-discord-images", {}, None),
    ("/mj/submit/upload-discord-images", {"base64Array": []}, None),
    ("/mj/insight-face/swap", {"sourceBase64": IMAGE}, None),
    ("/mj/insight-face/swap", {"targetBase64": IMAGE}, None),
    ("/mj/insight-face/swap", {}, None),
]


def _with_id(body: dict[str, Any], task_id: str) -> dict[str, Any]:
    return {k: v.replace("{id}", task_id) if isinstance(v, str) else v for k, v in body.items()}


@pytest.mark.parametrize(("path", "body", "message"), VALIDATION)
async def test_validation_error_is_code_4(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], message: str | None
) -> None:
    parent = await imagine(client)
    answer = await submit(client, path, _with_id(body, parent["id"]))
    assert answer["code"] == 4, answer
    assert answer["result"] is None
    assert isinstance(answer["description"], str)
    assert answer["description"]
    if message is not None:
        assert answer["description"] == message
    listed = (await client.get("/mj/task/list")).json()
    assert [t["id"] for t in listed] == [parent["id"]]


MISSING_PARENT: list[tuple[str, dict[str, Any]]] = [
    ("/mj/submit/action", {"taskId": UNKNOWN_ID, "customId": "MJ::JOB::upsample::1::x"}),
    ("/mj/submit/change", {"taskId": UNKNOWN_ID, "action": "UPSCALE", "index": 1}),
    ("/mj/submit/change", {"taskId": UNKNOWN_ID, "action": "REROLL", "index": 1}),
    ("/mj/submit/simple-change", {"content": f"{UNKNOWN_ID} V2"}),
]


@pytest.mark.parametrize(("path", "body"), MISSING_PARENT)
async def test_unknown_parent_is_code_3(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    answer = await submit(client, path, body)
    assert answer["code"] == 3, answer
    assert answer["description"] == PARENT_MISSING
    assert answer["result"] is None


async def test_modal_of_unknown_task_is_refused(client: httpx.AsyncClient) -> None:
    answer = await submit(client, "/mj/submit/modal", {"taskId": UNKNOWN_ID, "prompt": "x"})
    assert answer["code"] in (3, 4), answer
    assert answer["result"] is None


async def test_action_on_unfinished_parent_is_code_4(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(speed_factor=10)
    async with connect(sim) as client:
        parent_id = await submit_task(client, "/mj/submit/imagine", {"prompt": "slow"})
        fake = "MJ::JOB::upsample::1::00000000-0000-0000-0000-000000000000"
        answer = await submit(client, "/mj/submit/action", {"taskId": parent_id, "customId": fake})
        assert answer["code"] == 4, answer
        change = {"taskId": parent_id, "action": "UPSCALE", "index": 1}
        assert (await submit(client, "/mj/submit/change", change))["code"] == 4


@pytest.mark.parametrize(
    "prompt", ["a nsfwword picture", "NSFWWORD at night", "castle --ar 16:9 nsfwword"]
)
async def test_banned_word_is_code_24(client: httpx.AsyncClient, prompt: str) -> None:
    answer = await submit(client, "/mj/submit/imagine", {"prompt": prompt})
    assert answer["code"] == 24, answer
    assert answer["description"] == "可能包含敏感词"
    assert answer["result"] is None
    assert answer["properties"]["bannedWord"].lower() == "nsfwword"
    assert "nsfwword" in answer["properties"]["promptEn"].lower()
    assert (await client.get("/mj/task/list")).json() == []


ALL_SUBMITS: list[tuple[str, dict[str, Any]]] = [
    ("/mj/submit/imagine", {"prompt": "a cat"}),
    ("/mj/submit/blend", {"base64Array": [IMAGE, OTHER_IMAGE]}),
    ("/mj/submit/describe", {"base64": IMAGE}),
    ("/mj/submit/shorten", {"prompt": "a cat"}),
    ("/mj/insight-face/swap", {"sourceBase64": IMAGE, "targetBase64": OTHER_IMAGE}),
]


async def test_zero_accounts_answers_3(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(accounts=0)
    async with connect(sim) as client:
        for path, body in ALL_SUBMITS:
            answer = await submit(client, path, body)
            assert answer["code"] == 3, (path, answer)
            assert answer["description"] == NO_ACCOUNT
            assert answer["result"] is None
        assert (await client.get("/mj/task/list")).json() == []
        stats = (await client.get("/sim/stats")).json()
        assert stats["accounts"] == []
