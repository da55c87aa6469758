"""The modal flow: answer 21 and a MODAL task, /submit/modal, remix accounts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import StartSimulator
from tests.simulator.helpers import (
    ACCEPTED,
    PAN_DIRECTIONS,
    Answer,
    Task,
    act,
    assert_buttons,
    button,
    connect,
    describe,
    grid_buttons,
    imagine,
    message_hash,
    modal,
    must_fetch,
    png_data_url,
    shorten,
    upscale,
    wait_for,
)

MASK = png_data_url((255, 255, 255), (64, 64))


async def _open_modal(client: httpx.AsyncClient, parent: Task, custom_id: str) -> str:
    """Press a modal button: answer 21 with a new task that waits in MODAL."""
    answer = await act(client, parent, custom_id)
    assert answer["code"] == 21, answer
    task_id = answer["result"]
    assert isinstance(task_id, str)
    assert task_id != parent["id"]
    task = await must_fetch(client, task_id)
    assert task["status"] == "MODAL", task
    return task_id


async def _confirm(client: httpx.AsyncClient, task_id: str, **fields: Any) -> Task:
    answer = await modal(client, task_id, **fields)
    assert answer["code"] in ACCEPTED, answer
    assert answer["result"] == task_id
    return await wait_for(client, task_id)


async def test_custom_zoom_needs_a_zoom_in_the_modal_prompt(client: httpx.AsyncClient) -> None:
    parent = await upscale(client, await imagine(client))
    task_id = await _open_modal(client, parent, button(parent, "MJ::CustomZoom::"))
    for prompt in (None, "a wider view", "a wider view --zoom 3", "a wider view --zoom 0.5"):
        fields = {} if prompt is None else {"prompt": prompt}
        refused: Answer = await modal(client, task_id, **fields)
        assert refused["code"] == 4, (prompt, refused)
        assert (await must_fetch(client, task_id))["status"] == "MODAL"
    done = await _confirm(client, task_id, prompt="a wider view --zoom 1.5")
    assert done["action"] == "ZOOM"
    assert_buttons(done, grid_buttons(message_hash(done)))


async def test_modal_task_waits_until_confirmed(client: httpx.AsyncClient) -> None:
    parent = await upscale(client, await imagine(client))
    task_id = await _open_modal(client, parent, button(parent, "MJ::CustomZoom::"))
    other = await imagine(client, "a task that runs meanwhile")
    assert other["status"] == "SUCCESS"
    task = await must_fetch(client, task_id)
    assert task["status"] == "MODAL"
    assert task["startTime"] is None
    assert task["finishTime"] is None
    done = await _confirm(client, task_id, prompt="zoomed --zoom 2")
    assert done["status"] == "SUCCESS"


async def test_inpaint_needs_a_mask(client: httpx.AsyncClient) -> None:
    parent = await upscale(client, await imagine(client))
    task_id = await _open_modal(client, parent, button(parent, "MJ::Inpaint::"))
    refused = await modal(client, task_id, prompt="a hat")
    assert refused["code"] == 4, refused
    assert (await must_fetch(client, task_id))["status"] == "MODAL"
    done = await _confirm(client, task_id, prompt="a hat", maskBase64=MASK)
    assert done["action"] == "VARIATION"
    assert_buttons(done, grid_buttons(message_hash(done)))


@pytest.mark.parametrize("which", range(1, 5))
async def test_pic_reader_imagines_a_suggestion(client: httpx.AsyncClient, which: int) -> None:
    parent = await describe(client)
    task_id = await _open_modal(client, parent, f"MJ::Job::PicReader::{which}")
    done = await _confirm(client, task_id, prompt="a green square, flat colour --ar 1:1")
    assert done["action"] == "IMAGINE"
    assert_buttons(done, grid_buttons(message_hash(done)))


async def test_pic_reader_all_imagines_every_suggestion(client: httpx.AsyncClient) -> None:
    """Either a modal (UPSTREAM.md's reading) or trueai's answer: 1 with the four new ids."""
    parent = await describe(client)
    answer = await act(client, parent, "MJ::Job::PicReader::all")
    if answer["code"] == 21:
        done = [await _confirm(client, answer["result"], prompt="a green square")]
    else:
        assert answer["code"] in ACCEPTED, answer
        ids = answer["result"].split(",")
        assert len(ids) == 4
        assert parent["id"] not in ids
        done = [await wait_for(client, task_id) for task_id in ids]
    for task in done:
        assert task["action"] == "IMAGINE"
        assert_buttons(task, grid_buttons(message_hash(task)))


@pytest.mark.parametrize("which", range(1, 6))
async def test_prompt_analyzer_runs_after_modal(client: httpx.AsyncClient, which: int) -> None:
    parent = await shorten(client)
    task_id = await _open_modal(client, parent, f"MJ::Job::PromptAnalyzer::{which}")
    done = await _confirm(client, task_id, prompt="a lighthouse at dusk")
    assert done["status"] == "SUCCESS"
    assert done["id"] == task_id


async def test_modal_on_a_task_not_in_modal_is_refused(client: httpx.AsyncClient) -> None:
    grid = await imagine(client)
    answer = await modal(client, grid["id"], prompt="x --zoom 1.5")
    assert answer["code"] in (3, 4), answer
    assert (await must_fetch(client, grid["id"]))["status"] == "SUCCESS"


async def test_modal_cannot_be_confirmed_twice(client: httpx.AsyncClient) -> None:
    parent = await upscale(client, await imagine(client))
    task_id = await _open_modal(client, parent, button(parent, "MJ::CustomZoom::"))
    await _confirm(client, task_id, prompt="x --zoom 1.2")
    again = await modal(client, task_id, prompt="y --zoom 1.2")
    assert again["code"] in (3, 4), again


REMIX_MODAL: list[tuple[str, str, str]] = [
    ("grid", "::reroll::", "IMAGINE"),
    ("grid", "::variation::2::", "VARIATION"),
    *(("upscale", f"pan_{d}", "PAN") for d in PAN_DIRECTIONS),
]


@pytest.mark.parametrize(("parent_kind", "fragment", "action"), REMIX_MODAL)
async def test_remix_account_makes_reroll_variation_pan_modal(
    simulator_factory: StartSimulator, parent_kind: str, fragment: str, action: str
) -> None:
    sim = await simulator_factory(remix=True)
    async with connect(sim) as client:
        parent = await imagine(client)
        if parent_kind == "upscale":
            parent = await upscale(client, parent)
        task_id = await _open_modal(client, parent, button(parent, fragment))
        done = await _confirm(client, task_id, prompt="remixed: a blue fox")
    assert done["action"] == action
    assert_buttons(done, grid_buttons(message_hash(done)))


NEVER_MODAL: list[tuple[str, str]] = [
    ("grid", "::upsample::1::"),
    ("grid", "::upsample::4::"),
    ("upscale", "upsample_v6_2x_subtle"),
    ("upscale", "upsample_v6_2x_creative"),
    ("upscale", "MJ::Outpaint::50::"),
    ("upscale", "MJ::Outpaint::75::"),
    ("upscale", "MJ::BOOKMARK::"),
]


@pytest.mark.parametrize(("parent_kind", "fragment"), NEVER_MODAL)
async def test_remix_never_makes_upscale_zoom_out_bookmark_modal(
    simulator_factory: StartSimulator, parent_kind: str, fragment: str
) -> None:
    sim = await simulator_factory(remix=True)
    async with connect(sim) as client:
        parent = await imagine(client)
        if parent_kind == "upscale":
            parent = await upscale(client, parent)
        before = {t["id"] for t in (await client.get("/mj/task/list")).json()}
        answer = await act(client, parent, button(parent, fragment))
        assert answer["code"] != 21, answer
        if "BOOKMARK" not in fragment:
            assert answer["code"] in ACCEPTED, answer
            await wait_for(client, answer["result"])
        after = (await client.get("/mj/task/list")).json()
        assert all(t["status"] != "MODAL" for t in after if t["id"] not in before)


async def test_remix_shows_in_stats(simulator_factory: StartSimulator) -> None:
    remix = await simulator_factory(remix=True, accounts=2)
    plain = await simulator_factory(accounts=1)
    async with connect(remix) as client:
        accounts = (await client.get("/sim/stats")).json()["accounts"]
        assert [a["remix"] for a in accounts] == [True, True]
    async with connect(plain) as client:
        accounts = (await client.get("/sim/stats")).json()["accounts"]
        assert [a["remix"] for a in accounts] == [False]
