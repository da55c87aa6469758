"""Button sets after each kind of task, the action each customId produces, legacy change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.simulator.helpers import (
    ACCEPTED,
    DESCRIBE_BUTTONS,
    PAN_DIRECTIONS,
    SHORTEN_BUTTONS,
    UPSCALE_LABELS,
    Task,
    act,
    assert_buttons,
    blend,
    button,
    describe,
    grid_buttons,
    imagine,
    message_hash,
    modal,
    shorten,
    submit,
    upscale,
    upscale_buttons,
    wait_for,
)


async def _variation(client: httpx.AsyncClient) -> Task:
    grid = await imagine(client)
    answer = await act(client, grid, button(grid, "::variation::1::"))
    assert answer["code"] in ACCEPTED, answer
    return await wait_for(client, answer["result"])


async def _upscaled(client: httpx.AsyncClient) -> Task:
    return await upscale(client, await imagine(client))


PARENTS: dict[str, Callable[[httpx.AsyncClient], Awaitable[Task]]] = {
    "grid": imagine,
    "blend": blend,
    "variation": _variation,
    "upscale": _upscaled,
    "describe": describe,
}

ACTIONS: list[tuple[str, str, set[str], str | None]] = [
    ("grid", "::upsample::1::", {"UPSCALE"}, "upscale"),
    ("grid", "::upsample::4::", {"UPSCALE"}, "upscale"),
    ("grid", "::variation::1::", {"VARIATION"}, "grid"),
    ("grid", "::variation::3::", {"VARIATION"}, "grid"),
    ("grid", "::reroll::", {"IMAGINE"}, "grid"),
    ("blend", "::reroll::", {"BLEND"}, "grid"),
    ("blend", "::upsample::2::", {"UPSCALE"}, "upscale"),
    ("blend", "::variation::4::", {"VARIATION"}, "grid"),
    ("variation", "::reroll::", {"VARIATION"}, "grid"),
    ("variation", "::upsample::3::", {"UPSCALE"}, "upscale"),
    ("upscale", "upsample_v6_2x_subtle", {"UPSCALE", "UPSCALE_HD"}, None),
    ("upscale", "upsample_v6_2x_creative", {"UPSCALE", "UPSCALE_HD"}, None),
    ("upscale", "low_variation", {"VARIATION"}, "grid"),
    ("upscale", "high_variation", {"VARIATION"}, "grid"),
    ("upscale", "MJ::Outpaint::50::", {"ZOOM"}, "grid"),
    ("upscale", "MJ::Outpaint::75::", {"ZOOM"}, "grid"),
    *(("upscale", f"pan_{d}", {"PAN"}, "grid") for d in PAN_DIRECTIONS),
]


def _expected_buttons(kind: str, task: Task) -> set[str]:
    if kind == "grid":
        return grid_buttons(message_hash(task))
    if kind == "upscale":
        return upscale_buttons(message_hash(task))
    assert kind == "describe"
    return DESCRIBE_BUTTONS


@pytest.mark.parametrize(("parent_kind", "fragment", "actions", "buttons"), ACTIONS)
async def test_custom_id_produces_its_action(
    client: httpx.AsyncClient,
    parent_kind: str,
    fragment: str,
    actions: set[str],
    buttons: str | None,
) -> None:
    parent = await PARENTS[parent_kind](client)
    answer = await act(client, parent, button(parent, fragment))
    assert answer["code"] in ACCEPTED, answer
    assert answer["result"] != parent["id"]
    child = await wait_for(client, answer["result"])
    assert child["action"] in actions
    assert message_hash(child) != message_hash(parent)
    if buttons is not None:
        assert_buttons(child, _expected_buttons(buttons, child))


async def test_describe_retry_runs_a_new_describe(client: httpx.AsyncClient) -> None:
    parent = await describe(client)
    answer = await act(client, parent, "MJ::Picread::Retry")
    if answer["code"] == 21:
        answer = await modal(client, answer["result"])
    assert answer["code"] in ACCEPTED, answer
    child = await wait_for(client, answer["result"])
    assert child["action"] == "DESCRIBE"
    assert child["id"] != parent["id"]
    assert_buttons(child, DESCRIBE_BUTTONS)


def _by_id(task: Task) -> dict[str, dict[str, object]]:
    return {b["customId"]: b for b in task["buttons"]}


def _assert_button_json(task: Task) -> None:
    for b in task["buttons"]:
        assert set(b) >= {"customId", "emoji", "label", "type", "style"}, b
        assert b["type"] == 2, b
        assert b["style"] == 2, b


@pytest.mark.parametrize("make", [imagine, blend], ids=["imagine", "blend"])
async def test_grid_buttons(
    client: httpx.AsyncClient, make: Callable[[httpx.AsyncClient], Awaitable[Task]]
) -> None:
    task = await make(client)
    h = message_hash(task)
    assert_buttons(task, grid_buttons(h))
    _assert_button_json(task)
    by_id = _by_id(task)
    for i in range(1, 5):
        assert by_id[f"MJ::JOB::upsample::{i}::{h}"]["label"] == f"U{i}"
        assert by_id[f"MJ::JOB::variation::{i}::{h}"]["label"] == f"V{i}"
    reroll = by_id[f"MJ::JOB::reroll::0::{h}::SOLO"]
    assert reroll["emoji"] == "🔄"
    assert not reroll["label"]


async def test_upscale_buttons(client: httpx.AsyncClient) -> None:
    task = await upscale(client, await imagine(client), index=3)
    h = message_hash(task)
    assert_buttons(task, upscale_buttons(h))
    _assert_button_json(task)
    by_id = _by_id(task)
    for template, label in UPSCALE_LABELS.items():
        assert by_id[template.format(h=h)]["label"] == label
    pan_emojis = {by_id[f"MJ::JOB::pan_{d}::1::{h}::SOLO"]["emoji"] for d in PAN_DIRECTIONS}
    assert len(pan_emojis) == 4
    assert all(pan_emojis)
    bookmark = by_id[f"MJ::BOOKMARK::{h}"]["emoji"]
    assert isinstance(bookmark, str)
    assert bookmark.startswith("❤")


async def test_describe_gives_four_numbered_suggestions(client: httpx.AsyncClient) -> None:
    task = await describe(client)
    assert_buttons(task, DESCRIBE_BUTTONS)
    _assert_button_json(task)
    texts = {
        "prompt": task["prompt"],
        "promptEn": task["promptEn"],
        "finalPrompt": task["properties"]["finalPrompt"],
    }
    for name, text in texts.items():
        assert isinstance(text, str), name
        parts = [p.strip() for p in text.strip().split("\n\n")]
        assert len(parts) == 4, (name, text)
        for number, part in enumerate(parts, start=1):
            assert part.startswith(str(number)), (name, part)
            assert len(part) > 3, (name, part)


async def test_shorten_buttons(client: httpx.AsyncClient) -> None:
    task = await shorten(client)
    assert task["action"] == "SHORTEN"
    assert_buttons(task, SHORTEN_BUTTONS)
    _assert_button_json(task)


async def test_bookmark_creates_no_task(client: httpx.AsyncClient) -> None:
    task = await upscale(client, await imagine(client))
    before = {t["id"] for t in (await client.get("/mj/task/list")).json()}
    answer = await act(client, task, button(task, "MJ::BOOKMARK::"))
    assert answer["code"] not in (21, 22), answer
    assert answer["result"] in (None, task["id"]), answer
    after = {t["id"] for t in (await client.get("/mj/task/list")).json()}
    assert after == before
    assert (await client.get(f"/mj/task/{task['id']}/fetch")).json()["status"] == "SUCCESS"


@pytest.mark.parametrize(
    ("action", "index", "expected", "buttons"),
    [
        ("UPSCALE", 2, "UPSCALE", "upscale"),
        ("VARIATION", 3, "VARIATION", "grid"),
        ("REROLL", 0, "IMAGINE", "grid"),
    ],
)
async def test_legacy_change(
    client: httpx.AsyncClient, action: str, index: int, expected: str, buttons: str
) -> None:
    parent = await imagine(client)
    body = {"taskId": parent["id"], "action": action, "index": index}
    answer = await submit(client, "/mj/submit/change", body)
    assert answer["code"] in ACCEPTED, answer
    child = await wait_for(client, answer["result"])
    assert child["action"] == expected
    assert child["id"] != parent["id"]
    assert_buttons(child, _expected_buttons(buttons, child))


@pytest.mark.parametrize(
    ("suffix", "expected", "buttons"),
    [
        ("U1", "UPSCALE", "upscale"),
        ("U4", "UPSCALE", "upscale"),
        ("V2", "VARIATION", "grid"),
        ("R", "IMAGINE", "grid"),
    ],
)
async def test_legacy_simple_change(
    client: httpx.AsyncClient, suffix: str, expected: str, buttons: str
) -> None:
    parent = await imagine(client)
    answer = await submit(
        client, "/mj/submit/simple-change", {"content": f"{parent['id']} {suffix}"}
    )
    assert answer["code"] in ACCEPTED, answer
    child = await wait_for(client, answer["result"])
    assert child["action"] == expected
    assert_buttons(child, _expected_buttons(buttons, child))
