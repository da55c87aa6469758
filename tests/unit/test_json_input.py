"""Decoding JSON from others: depth found before decoding, text refused in our own words."""

from __future__ import annotations

import json

import msgspec
import pytest

from gateway import json_input
from gateway.json_input import JsonInputError


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("depth", [1, 5, 32])
def test_nesting_up_to_the_limit_decodes(depth: int) -> None:
    assert json_input.decode(_nested(depth)) is not None
    assert not json_input.too_deep(_nested(depth), 32)


@pytest.mark.parametrize("depth", [33, 1000, 200_000])
def test_nesting_past_the_limit_is_refused_before_decoding(depth: int) -> None:
    assert json_input.too_deep(_nested(depth), 32)
    with pytest.raises(JsonInputError, match="nested deeper than 32"):
        json_input.decode(_nested(depth))


def test_mixed_brackets_count_one_level_each() -> None:
    doc = b"[" * 16 + b"{" * 0 + b'{"a":' * 16 + b"1" + b"}" * 16 + b"]" * 16
    assert not json_input.too_deep(doc, 32)
    assert json_input.too_deep(doc, 31)


def test_brackets_inside_strings_are_text_not_structure() -> None:
    text = "[[[[" * 100 + r"\"" + "{{{" * 100 + "\\\\"
    doc = json.dumps({"prompt": text, "ids": [[1]]}).encode()
    assert not json_input.too_deep(doc, 3)
    assert json_input.decode(doc)["prompt"] == text


def test_wide_documents_are_not_deep() -> None:
    doc = b"[" + b",".join([b"[]"] * 100_000) + b"]"
    assert not json_input.too_deep(doc, 2)
    assert json_input.too_deep(b"[[[]]]", 2)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"prompt":"\xff\xfe bad"}', "UTF-8"),
        (b'{"prompt":"\xc0\xaf"}', "UTF-8"),
        (rb'{"prompt":"a\u0000b"}', "NUL"),
        (rb'{"prompt":"\ud800"}', "malformed JSON"),
        (b'{"prompt":', "malformed JSON"),
    ],
)
def test_text_that_cannot_be_stored_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(JsonInputError, match=message):
        json_input.decode(raw)


def test_type_errors_keep_msgspec_field_paths() -> None:
    class Body(msgspec.Struct):
        prompt: str

    with pytest.raises(msgspec.ValidationError, match=r"\$\.prompt"):
        json_input.decode(b'{"prompt": 1}', Body)


def test_array_items_split_one_deep_item_from_the_others() -> None:
    deep = b'{"id":"2","p":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    raw = b'[{"id":"1","s":"a,]}"},' + deep + b',{"id":"3"}]'
    items = json_input.array_items(raw)
    assert [json_input.top_level_scalar(item, "id") for item in items] == ["1", "2", "3"]
    assert json_input.decode(items[0]) == {"id": "1", "s": "a,]}"}
    with pytest.raises(JsonInputError):
        json_input.decode(items[1])


@pytest.mark.parametrize("raw", [b"", b"{}", b'"x"', b"null", b"[1,2"])
def test_array_items_of_what_is_not_an_array(raw: bytes) -> None:
    with pytest.raises(JsonInputError):
        json_input.array_items(raw)


def test_top_level_scalar_ignores_nested_and_quoted_keys() -> None:
    raw = b'{"p":{"id":"inner"},"s":"\\"id\\":\\"fake\\"","id":1712345678901234,"x":"\xff"}'
    assert json_input.top_level_scalar(raw, "id") == "1712345678901234"
    assert json_input.top_level_scalar(b'{"id":{"a":1}}', "id") is None
