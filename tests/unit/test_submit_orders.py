"""Client bodies into submit orders, pure: what goes upstream, at what price, in which mode."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gateway.api import submit_orders
from gateway.api.schemas import ActionBody, ChangeBody, ImagineBody, SimpleChangeBody, UploadBody
from gateway.api.validation import decode_json
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
