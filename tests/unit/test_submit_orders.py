"""Client bodies into submit orders, pure: what goes upstream, at what price, in which mode."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gateway.api import submit_orders
from gateway.api.schemas import (
    ActionBody,
    ChangeBody,
    EditBody,
    ImagineBody,
    SimpleChangeBody,
    UploadBody,
    VideoBody,
)
from gateway.api.validation import decode_json, validate
from gateway.errors import BadRequest, NotFound


def _body(kind: Any, body: dict[str, Any]) -> Any:
    return decode_json(kind, msgspec.json.encode(body), 1 << 20)


@pytest.mark.parametrize(
    ("path_mode", "body", "mode"),
    [
        (None, {"prompt": "a fox"}, "FAST"),
        (None, {"prompt": "a fox --relax"}, "RELAX"),
        (None, {"prompt": "a fox --relax", "accountFilter": {"modes": ["TURBO"]}}, "TURBO"),
        ("RELAX", {"prompt": "a fox --turbo", "accountFilter": {"modes": ["FAST"]}}, "RELAX"),
    ],
)
def test_the_mode_of_an_imagine_by_the_contracts_precedence(
    path_mode: str | None, body: dict[str, Any], mode: str
) -> None:
    order = submit_orders.imagine(_body(ImagineBody, body), path_mode)
    assert order.mode == mode
    assert order.upstream_body["accountFilter"]["modes"] == [mode]
    assert "--" not in order.upstream_body["prompt"]  # the mode travels in the filter only
    assert order.prompt == body["prompt"]  # the task keeps what the client sent
    assert (order.price_action, order.action, order.upstream_path) == (
        "mj_imagine",
        "IMAGINE",
        "/mj/submit/imagine",
    )


def test_an_account_filter_is_forwarded_narrowed_and_marks_the_order() -> None:
    body = {"prompt": "a", "accountFilter": {"instanceId": "acc-1", "remark": "x", "remix": True}}
    order = submit_orders.imagine(_body(ImagineBody, body), None)
    assert order.upstream_body["accountFilter"] == {
        "modes": ["FAST"],
        "instanceId": "acc-1",
        "channelId": None,
    }
    assert order.account_named
    assert not submit_orders.imagine(_body(ImagineBody, {"prompt": "a"}), None).account_named


def test_an_upload_is_priced_per_image_and_keeps_the_filters_name() -> None:
    images = ["data:image/png;base64,x"] * 3
    plus = submit_orders.upload(_body(UploadBody, {"base64Array": images}), "RELAX")
    assert (plus.quantity_bp, plus.mode, plus.account_named) == (30_000, "RELAX", False)
    assert "filter" not in plus.upstream_body
    trueai = submit_orders.upload(
        _body(UploadBody, {"base64Array": images[:1], "accountFilter": {"instanceId": "a"}}), None
    )
    assert trueai.upstream_body["accountFilter"] == {
        "modes": ["FAST"],
        "instanceId": "a",
        "channelId": None,
    }
    assert "filter" not in trueai.upstream_body
    assert trueai.account_named


CHANGES = [
    (ChangeBody, {"taskId": "17", "action": "UPSCALE", "index": 2}, "UPSCALE", 2, "mj_upscale"),
    (ChangeBody, {"taskId": "17", "action": "REROLL", "index": 3}, "REROLL", None, "mj_reroll"),
    (SimpleChangeBody, {"content": "17 v4"}, "VARIATION", 4, "mj_variation"),
    (SimpleChangeBody, {"content": " 17   R "}, "REROLL", None, "mj_reroll"),
]


@pytest.mark.parametrize(("kind", "body", "action", "index", "price_action"), CHANGES)
def test_the_legacy_change_forms_become_the_same_change(
    kind: Any, body: dict[str, Any], action: str, index: int | None, price_action: str
) -> None:
    parsed = _body(kind, body)
    build = submit_orders.change if kind is ChangeBody else submit_orders.simple_change
    built = build(parsed)
    assert (built.kind, built.upstream_path, built.parent_id) == ("change", "/mj/submit/change", 17)
    assert built.upstream_body.get("index") == index
    assert (built.action, built.price_action) == (action, price_action)


def test_a_button_that_starts_nothing_or_a_parent_that_cannot_be_an_id_is_refused() -> None:
    with pytest.raises(BadRequest):
        submit_orders.action(_body(ActionBody, {"taskId": "17", "customId": "MJ::BOOKMARK::x"}))
    with pytest.raises(NotFound):
        submit_orders.action(
            _body(ActionBody, {"taskId": "1e3", "customId": "MJ::JOB::upsample::1::x"})
        )
    upscale = submit_orders.action(
        _body(ActionBody, {"taskId": "17", "customId": "MJ::JOB::upsample::1::x"})
    )
    assert (upscale.action, upscale.price_action, upscale.parent_id) == (
        "UPSCALE",
        "mj_upscale",
        17,
    )


@pytest.mark.parametrize(
    ("body", "price_action", "quantity_bp", "sent"),
    [
        (
            {"prompt": "waves --turbo", "image": "https://example.com/a.png"},
            "mj_video",
            10_000,
            {"prompt": "waves", "image": "https://example.com/a.png", "batchSize": 4},
        ),
        (
            {"prompt": "w", "image": "https://example.com/a.png", "batchSize": 2, "motion": ""},
            "mj_video",
            5_000,
            {"motion": "low", "videoType": "vid_1.1_i2v_480", "loop": False},
        ),
        (
            {"prompt": "w", "action": "extend", "taskId": "17", "batchSize": 1},
            "mj_video_extend",
            2_500,
            {"action": "extend", "index": 0, "batchSize": 1},
        ),
    ],
)
def test_a_video_order_is_priced_per_video_of_its_batch(
    body: dict[str, Any], price_action: str, quantity_bp: int, sent: dict[str, Any]
) -> None:
    order = submit_orders.video(validate(_body(VideoBody, body)), None)
    assert (order.price_action, order.action, order.quantity_bp) == (
        price_action,
        "VIDEO",
        quantity_bp,
    )
    assert sent.items() <= order.upstream_body.items(), order.upstream_body
    assert order.parent_id == (17 if "taskId" in body else None)
    assert order.description == f"/video {body['prompt']}"
    assert order.prompt == body["prompt"]
    if "taskId" in body:
        assert "image" not in order.upstream_body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "w"}, "image"),
        ({"prompt": "w", "image": "https://x.test/a.png", "motion": "wild"}, "motion"),
        ({"prompt": "w", "image": "https://x.test/a.png", "batchSize": 3}, "batchSize"),
        ({"prompt": "w", "image": "https://x.test/a.png", "videoType": "vid_2"}, "videoType"),
        ({"prompt": "w", "image": "https://x.test/a b.png"}, "image"),
        ({"prompt": "w", "image": "https://x.test/a.png", "endImage": "AAAA"}, "endImage"),
        ({"prompt": "w", "action": "extend"}, "taskId"),
        ({"prompt": "w", "action": "extend", "taskId": "1", "index": -1}, "index"),
        ({"prompt": "w", "action": "remix", "taskId": "1"}, "action"),
    ],
)
def test_a_bad_video_body_names_its_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as refused:
        validate(_body(VideoBody, body))
    assert refused.value.description.startswith(f"{field}:"), refused.value.description


@pytest.mark.parametrize(
    ("kind", "command", "action"),
    [("edits", "edit", "EDIT"), ("retexture", "retexture", "RETEXTURE")],
)
def test_an_edit_order_sends_its_image_and_prompt(kind: str, command: str, action: str) -> None:
    body = _body(EditBody, {"prompt": "gold --relax", "image": "https://x.test/a.png"})
    order = submit_orders.edit(kind, command, validate(body), None)
    assert (order.kind, order.action, order.price_action, order.mode) == (
        kind,
        action,
        f"mj_{kind}",
        "RELAX",
    )
    assert order.upstream_path == f"/mj/submit/{kind}"
    assert order.upstream_body["image"] == "https://x.test/a.png"
    assert order.description == f"/{command} gold --relax"


def test_a_change_and_its_button_say_the_same_command() -> None:
    grid = "1712345678901234"
    by_change = submit_orders.change(
        _body(ChangeBody, {"taskId": grid, "action": "VARIATION", "index": 3})
    )
    by_simple = submit_orders.simple_change(_body(SimpleChangeBody, {"content": f"{grid} R"}))
    by_button = submit_orders.action(
        _body(ActionBody, {"taskId": grid, "customId": "MJ::JOB::variation::3::0a1b"})
    )
    assert by_change.description == by_button.description == f"/up {grid} V3"
    assert (by_simple.action, by_simple.description) == ("REROLL", f"/up {grid} R")
