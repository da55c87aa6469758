"""Body binding (400s), field checks (code 4) and the small parsers of the simulator."""

from __future__ import annotations

import base64

import pytest

from gateway.simulator.protocol import Dimensions, Mode, TaskAction
from gateway.simulator.validation import (
    BadRequest,
    Body,
    Invalid,
    account_filter,
    banned_word,
    decode_data_url,
    parse_simple_change,
    zoom_is_valid,
)

PNG_URL = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_unbindable_bodies_are_bad_requests(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        Body.parse(raw)


def test_text_accessor_coerces_numbers_and_rejects_objects() -> None:
    body = Body.parse(b'{"taskId": 1712345678901234, "prompt": {"a": 1}, "state": null}')
    assert body.text("taskId") == "1712345678901234"
    assert body.text("state") is None
    assert body.text("missing") is None
    with pytest.raises(BadRequest):
        body.text("prompt")


def test_list_and_enum_accessors() -> None:
    body = Body.parse(b'{"base64Array": ["a", "b"], "bad": ["a", 1], "dimensions": "WIDE"}')
    assert body.texts("base64Array") == ["a", "b"]
    with pytest.raises(BadRequest):
        body.texts("bad")
    with pytest.raises(BadRequest):
        body.enum("dimensions", Dimensions)
    assert Body.parse(b'{"dimensions": "PORTRAIT"}').enum("dimensions", Dimensions) == (
        Dimensions.PORTRAIT
    )


def test_integer_accessor() -> None:
    body = Body.parse(b'{"a": 2, "b": "3", "c": "x", "d": true}')
    assert body.integer("a") == 2
    assert body.integer("b") == 3
    for name in ("c", "d"):
        with pytest.raises(BadRequest):
            body.integer(name)


def test_account_filter_reads_the_first_mode() -> None:
    body = Body.parse(b'{"accountFilter": {"modes": ["RELAX", "FAST"], "instanceId": "acc"}}')
    chosen = account_filter(body)
    assert (chosen.mode, chosen.instance_id) == (Mode.RELAX, "acc")
    assert account_filter(Body.parse(b"{}")).mode is None
    with pytest.raises(BadRequest):
        account_filter(Body.parse(b'{"accountFilter": {"modes": ["WARP"]}}'))


def test_data_urls() -> None:
    image = decode_data_url(PNG_URL)
    assert (image.mime_type, image.data, image.suffix) == ("image/png", b"\x89PNG fake", "png")
    assert decode_data_url("data:image/jpeg;base64,AAAA").suffix == "jpg"
    for bad in ("AAAA", "data:image/png,AAAA", "data:image/png;base64,@@@", "http://x/y.png"):
        with pytest.raises(Invalid) as error:
            decode_data_url(bad)
        assert error.value.message == "base64格式错误"


def test_banned_words_match_whole_words_only() -> None:
    assert banned_word("a NSFWWORD cat") == "nsfwword"
    assert banned_word("notnsfwwordy cat") is None


@pytest.mark.parametrize(
    ("prompt", "valid"),
    [("x --zoom 2", True), ("x --zoom 1.5 --ar 1:1", True), ("x --zoom 2.5", False), ("x", False)],
)
def test_custom_zoom_needs_zoom_between_one_and_two(prompt: str, valid: bool) -> None:
    assert zoom_is_valid(prompt) is valid


def test_simple_change_content() -> None:
    change = parse_simple_change(" 1712345678901234 U3 ")
    assert (change.task_id, change.action, change.index) == (
        "1712345678901234",
        TaskAction.UPSCALE,
        3,
    )
    assert parse_simple_change("123 v1").action is TaskAction.VARIATION
    assert parse_simple_change("123 R").action is TaskAction.REROLL
    for bad in (None, "", "123", "123 U5", "123 X1", "123 U1 extra"):
        with pytest.raises(Invalid):
            parse_simple_change(bad)
