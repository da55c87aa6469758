"""Request schemas and input validation of the /mj API (gateway.api.schemas, .validation)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from PIL import Image

from gateway.api.schemas import (
    MAX_CUSTOM_ID_CHARS,
    MAX_LIST_IDS,
    MAX_NOTIFY_HOOK_CHARS,
    MAX_PROMPT_CHARS,
    MAX_STATE_CHARS,
    MAX_TASK_ID_CHARS,
    AccountFilter,
    ActionBody,
    BlendBody,
    ChangeBody,
    DescribeBody,
    ImagineBody,
    ListByConditionBody,
    ModalBody,
    ShortenBody,
    SimpleChangeBody,
    SwapFaceBody,
    UploadBody,
)
from gateway.api.validation import (
    MAX_IMAGE_BYTES,
    check_change,
    check_image,
    check_notify_hook,
    decode_json,
    mode_from,
    parse_simple_change,
    validate,
)
from gateway.errors import BadRequest, PayloadTooLarge

LIMIT = 32 * 1024 * 1024
FORMATS = {"png": "PNG", "jpeg": "JPEG", "gif": "GIF", "webp": "WEBP"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_bytes(fmt: str, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), color).save(buffer, format=FORMATS[fmt])
    return buffer.getvalue()


def data_url(subtype: str, data: bytes) -> str:
    return f"data:image/{subtype};base64,{base64.b64encode(data).decode()}"


def image_url(fmt: str, color: tuple[int, int, int] = (200, 30, 30)) -> str:
    return data_url(fmt, image_bytes(fmt, color))


def encode(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields).encode()


def refused(kind: type[object], fields: dict[str, Any]) -> str:
    with pytest.raises(BadRequest) as caught:
        decode_json(kind, encode(fields), LIMIT)
    assert caught.value.http_status == 400
    assert caught.value.code == 21
    return caught.value.description


def bad_request(call: Any, *args: Any) -> str:
    with pytest.raises(BadRequest) as caught:
        call(*args)
    return caught.value.description


# decode_json: JSON, types, limits


def test_imagine_minimal_gets_defaults() -> None:
    body = decode_json(ImagineBody, b'{"prompt": "a cat"}', LIMIT)
    assert body == ImagineBody(prompt="a cat")
    assert body.base64Array == []
    assert body.botType == "MID_JOURNEY"
    assert body.accountFilter is None
    assert body.notifyHook is None
    assert body.state is None


def test_imagine_all_fields_and_unknown_fields_ignored() -> None:
    body = decode_json(
        ImagineBody,
        encode(
            {
                "prompt": "a cat --v 6",
                "base64Array": ["x"],
                "botType": "NIJI_JOURNEY",
                "accountFilter": {
                    "modes": ["RELAX", "FAST"],
                    "instanceId": "i1",
                    "channelId": "c1",
                    "remix": True,
                },
                "notifyHook": "https://example.com/hook",
                "state": '{"a": 1}',
                "somethingNew": [1, 2, 3],
            }
        ),
        LIMIT,
    )
    assert body.botType == "NIJI_JOURNEY"
    assert body.accountFilter == AccountFilter(
        modes=["RELAX", "FAST"], instanceId="i1", channelId="c1"
    )
    assert body.base64Array == ["x"]
    assert body.state == '{"a": 1}'


def test_body_at_the_limit_is_read_and_over_it_is_413() -> None:
    raw = encode({"prompt": "p"})
    assert decode_json(ImagineBody, raw, len(raw)).prompt == "p"
    with pytest.raises(PayloadTooLarge) as caught:
        decode_json(ImagineBody, raw, len(raw) - 1)
    assert (caught.value.http_status, caught.value.code) == (413, 21)


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"not json", b'{"prompt": "a"} trailing', b"\xff\xfe", b"{'prompt': 'a'}"]
)
def test_malformed_json_is_bad_request(raw: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_json(ImagineBody, raw, LIMIT)
    assert "malformed JSON" in caught.value.description


@pytest.mark.parametrize("raw", [b"[]", b'"prompt"', b"null", b"42"])
def test_body_must_be_an_object(raw: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_json(ImagineBody, raw, LIMIT)
    assert "Expected `object`" in caught.value.description


def test_wrong_type_names_the_field_path() -> None:
    assert refused(ImagineBody, {"prompt": 1}) == (
        "invalid request: Expected `str`, got `int` - at `$.prompt`"
    )
    assert "$.base64Array[1]" in refused(ImagineBody, {"prompt": "p", "base64Array": ["a", 2]})
    assert "$.accountFilter" in refused(ImagineBody, {"prompt": "p", "accountFilter": "FAST"})
    assert "$.chooseSameChannel" in refused(
        ActionBody, {"taskId": "1", "customId": "c", "chooseSameChannel": "yes"}
    )


@pytest.mark.parametrize(
    ("kind", "fields", "missing"),
    [
        (ImagineBody, {}, "prompt"),
        (BlendBody, {}, "base64Array"),
        (DescribeBody, {}, "base64"),
        (ShortenBody, {}, "prompt"),
        (ActionBody, {"customId": "c"}, "taskId"),
        (ActionBody, {"taskId": "1"}, "customId"),
        (ModalBody, {"prompt": "p"}, "taskId"),
        (ChangeBody, {"taskId": "1"}, "action"),
        (ChangeBody, {"action": "REROLL"}, "taskId"),
        (SimpleChangeBody, {}, "content"),
        (UploadBody, {}, "base64Array"),
        (SwapFaceBody, {"sourceBase64": "s"}, "targetBase64"),
        (SwapFaceBody, {"targetBase64": "t"}, "sourceBase64"),
        (ListByConditionBody, {}, "ids"),
    ],
)
def test_missing_required_field_is_named(
    kind: type[object], fields: dict[str, Any], missing: str
) -> None:
    assert f"missing required field `{missing}`" in refused(kind, fields)


def test_null_for_a_required_field_is_refused() -> None:
    assert "$.prompt" in refused(ImagineBody, {"prompt": None})


@pytest.mark.parametrize(
    ("kind", "base", "field", "limit"),
    [
        (ImagineBody, {}, "prompt", MAX_PROMPT_CHARS),
        (ShortenBody, {}, "prompt", MAX_PROMPT_CHARS),
        (ModalBody, {"taskId": "1"}, "prompt", MAX_PROMPT_CHARS),
        (ImagineBody, {"prompt": "p"}, "state", MAX_STATE_CHARS),
        (ImagineBody, {"prompt": "p"}, "notifyHook", MAX_NOTIFY_HOOK_CHARS),
        (ActionBody, {"taskId": "1"}, "customId", MAX_CUSTOM_ID_CHARS),
        (ActionBody, {"customId": "c"}, "taskId", MAX_TASK_ID_CHARS),
        (ChangeBody, {"action": "REROLL"}, "taskId", MAX_TASK_ID_CHARS),
    ],
)
def test_text_limits_at_and_over_the_boundary(
    kind: type[object], base: dict[str, Any], field: str, limit: int
) -> None:
    at_limit = decode_json(kind, encode({**base, field: "é" * limit}), LIMIT)
    assert getattr(at_limit, field) == "é" * limit
    description = refused(kind, {**base, field: "é" * (limit + 1)})
    assert f"length <= {limit}" in description
    assert f"$.{field}" in description


def test_contract_limits_are_the_documented_ones() -> None:
    assert MAX_PROMPT_CHARS == 8192
    assert MAX_STATE_CHARS == 1024
    assert MAX_NOTIFY_HOOK_CHARS == 2048
    assert MAX_LIST_IDS == 500
    assert MAX_IMAGE_BYTES == 4 * 1024 * 1024


@pytest.mark.parametrize(
    ("kind", "base", "field"),
    [
        (ImagineBody, {}, "prompt"),
        (ShortenBody, {}, "prompt"),
        (ActionBody, {"taskId": "1"}, "customId"),
        (ActionBody, {"customId": "c"}, "taskId"),
        (ModalBody, {}, "taskId"),
        (ChangeBody, {"action": "REROLL"}, "taskId"),
        (SimpleChangeBody, {}, "content"),
    ],
)
def test_empty_required_text_is_refused(
    kind: type[object], base: dict[str, Any], field: str
) -> None:
    description = refused(kind, {**base, field: ""})
    assert "length >= 1" in description
    assert f"$.{field}" in description


def test_modal_prompt_may_be_empty_or_absent() -> None:
    assert decode_json(ModalBody, b'{"taskId": "1", "prompt": ""}', LIMIT).prompt == ""
    assert decode_json(ModalBody, b'{"taskId": "1"}', LIMIT).prompt is None


@pytest.mark.parametrize(
    ("kind", "fields", "path"),
    [
        (ImagineBody, {"prompt": "p", "botType": "MJ"}, "$.botType"),
        (ImagineBody, {"prompt": "p", "botType": "mid_journey"}, "$.botType"),
        (
            ImagineBody,
            {"prompt": "p", "accountFilter": {"modes": ["SLOW"]}},
            "$.accountFilter.modes[0]",
        ),
        (
            ShortenBody,
            {"prompt": "p", "accountFilter": {"modes": ["FAST", "x"]}},
            "$.accountFilter.modes[1]",
        ),
        (BlendBody, {"base64Array": ["a", "b"], "dimensions": "WIDE"}, "$.dimensions"),
        (ChangeBody, {"taskId": "1", "action": "ZOOM"}, "$.action"),
        (DescribeBody, {"base64": "x", "botType": "INSIGHT_FACE"}, "$.botType"),
    ],
)
def test_unknown_enum_values_are_refused(
    kind: type[object], fields: dict[str, Any], path: str
) -> None:
    description = refused(kind, fields)
    assert "Invalid enum value" in description
    assert path in description


@pytest.mark.parametrize("count", [2, 5])
def test_blend_accepts_two_to_five_images(count: int) -> None:
    body = decode_json(BlendBody, encode({"base64Array": ["x"] * count}), LIMIT)
    assert len(body.base64Array) == count
    assert body.dimensions == "SQUARE"


@pytest.mark.parametrize(("count", "bound"), [(0, ">= 2"), (1, ">= 2"), (6, "<= 5")])
def test_blend_refuses_fewer_than_two_or_more_than_five(count: int, bound: str) -> None:
    description = refused(BlendBody, {"base64Array": ["x"] * count})
    assert bound in description
    assert "$.base64Array" in description


def test_upload_takes_one_to_five_images_and_an_account_filter() -> None:
    assert "length >= 1" in refused(UploadBody, {"base64Array": []})
    assert "length <= 5" in refused(UploadBody, {"base64Array": ["x"] * 6})
    body = decode_json(
        UploadBody,
        encode({"base64Array": ["x"], "filter": {"instanceId": "abc", "remark": "r"}}),
        LIMIT,
    )
    assert body.filter == AccountFilter(instanceId="abc")
    assert "length <= 64" in refused(
        UploadBody, {"base64Array": ["x"], "filter": {"instanceId": "a" * 65}}
    )
    assert "Expected `object | null`" in refused(
        UploadBody, {"base64Array": ["x"], "filter": [[1]]}
    )


def test_list_by_condition_takes_at_most_500_ids() -> None:
    ids = [str(1_700_000_000_000_000 + n) for n in range(MAX_LIST_IDS + 1)]
    assert decode_json(ListByConditionBody, encode({"ids": ids[:500]}), LIMIT).ids == ids[:500]
    assert decode_json(ListByConditionBody, b'{"ids": []}', LIMIT).ids == []
    description = refused(ListByConditionBody, {"ids": ids})
    assert "length <= 500" in description
    assert "$.ids" in description
    assert "$.ids[1]" in refused(ListByConditionBody, {"ids": ["1", 2]})


@pytest.mark.parametrize("index", [1, 4])
def test_change_index_in_range(index: int) -> None:
    body = decode_json(
        ChangeBody, encode({"taskId": "1", "action": "UPSCALE", "index": index}), LIMIT
    )
    assert body.index == index


@pytest.mark.parametrize(("index", "bound"), [(0, ">= 1"), (5, "<= 4"), (-1, ">= 1")])
def test_change_index_out_of_range(index: int, bound: str) -> None:
    description = refused(ChangeBody, {"taskId": "1", "action": "VARIATION", "index": index})
    assert bound in description
    assert "$.index" in description


@pytest.mark.parametrize("index", [True, "2", 2.5])
def test_change_index_must_be_an_integer(index: object) -> None:
    assert "$.index" in refused(ChangeBody, {"taskId": "1", "action": "UPSCALE", "index": index})


# check_image


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_real_format_is_accepted(fmt: str) -> None:
    assert check_image("base64", image_url(fmt)) == f"image/{fmt}"


def test_gif89a_is_accepted() -> None:
    buffer = io.BytesIO()
    Image.new("P", (2, 2), 0).save(buffer, format="GIF", transparency=0)
    data = buffer.getvalue()
    assert data.startswith(b"GIF89a")
    assert check_image("base64", data_url("gif", data)) == "image/gif"


def test_declared_mime_is_case_insensitive_and_returned_lower_case() -> None:
    payload = base64.b64encode(image_bytes("png")).decode()
    assert check_image("base64", f"DATA:IMAGE/PNG;BASE64,{payload}") == "image/png"


@pytest.mark.parametrize(
    ("actual", "declared"),
    [(a, d) for a in sorted(FORMATS) for d in sorted(FORMATS) if a != d],
)
def test_format_must_match_the_declared_mime(actual: str, declared: str) -> None:
    description = bad_request(
        check_image, "base64Array[1]", data_url(declared, image_bytes(actual))
    )
    assert description.startswith(f"base64Array[1]: image is not a {FORMATS[declared]} as declared")
    assert FORMATS[actual] in description.split("as declared", 1)[1]


@pytest.mark.parametrize(
    "data",
    [
        b"hello world, not an image",
        PNG_SIGNATURE[:4],
        b"RIFF\x10\x00\x00\x00WAVEfmt ",
        b"GIF88a" + b"\x00" * 10,
        b"\xff\xd8" + b"\x00" * 10,
    ],
)
def test_unrecognised_bytes_are_refused(data: bytes) -> None:
    for declared in FORMATS:
        description = bad_request(check_image, "maskBase64", data_url(declared, data))
        assert description.startswith(f"maskBase64: image is not a {FORMATS[declared]} as declared")


@pytest.mark.parametrize(
    "value",
    [
        "data:image/bmp;base64,Qk0=",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "data:image/png," + base64.b64encode(image_bytes("png")).decode(),
        "data:image/png;charset=utf-8;base64," + base64.b64encode(image_bytes("png")).decode(),
        " data:image/png;base64," + base64.b64encode(image_bytes("png")).decode(),
        "https://example.com/cat.png",
        "",
    ],
)
def test_value_must_be_an_image_data_url_or_bare_base64(value: str) -> None:
    description = bad_request(check_image, "base64Array[0]", value)
    assert description.startswith("base64Array[0]: expected a data URL")


def good_payload() -> str:
    """A valid PNG-headed payload whose base64 ends in "==" padding."""
    return base64.b64encode(PNG_SIGNATURE + b"\x00" * 8).decode()


@pytest.mark.parametrize(
    "payload",
    [
        "!!!!",
        good_payload()[:-2] + "@=",
        good_payload().rstrip("="),
        good_payload()[:-1],
        good_payload()[:20] + "\n" + good_payload()[20:],
        good_payload()[:20] + " " + good_payload()[20:],
        good_payload()[:20] + "é" + good_payload()[20:],
        good_payload() + "====",
    ],
)
def test_base64_must_decode_strictly(payload: str) -> None:
    assert good_payload().endswith("==")
    assert check_image("sourceBase64", f"data:image/png;base64,{good_payload()}") == "image/png"
    description = bad_request(check_image, "sourceBase64", f"data:image/png;base64,{payload}")
    assert description == "sourceBase64: image is not valid base64"


def test_empty_payload_is_refused() -> None:
    assert bad_request(check_image, "base64", "data:image/png;base64,") == "base64: image is empty"


@pytest.mark.parametrize("size", [1000, 1001, 1002, 1003])
def test_decoded_size_at_and_over_the_limit(size: int) -> None:
    data = PNG_SIGNATURE + b"\x00" * (size - len(PNG_SIGNATURE))
    assert check_image("base64", data_url("png", data), max_bytes=size) == "image/png"
    description = bad_request(check_image, "base64", data_url("png", data + b"\x00"), size)
    assert description == f"base64: image larger than {size} bytes"


def test_default_limit_is_four_mebibytes() -> None:
    data = PNG_SIGNATURE + b"\x00" * (MAX_IMAGE_BYTES - len(PNG_SIGNATURE))
    assert check_image("base64", data_url("png", data)) == "image/png"
    description = bad_request(check_image, "base64", data_url("png", data + b"\x00"))
    assert description == f"base64: image larger than {MAX_IMAGE_BYTES} bytes"


def test_huge_payload_is_refused_before_decoding() -> None:
    value = "data:image/png;base64," + "!" * (MAX_IMAGE_BYTES * 2)
    assert bad_request(check_image, "base64", value).endswith("larger than 4194304 bytes")


# check_notify_hook


@pytest.mark.parametrize(
    "hook",
    [
        None,
        "",
        "http://example.com",
        "https://example.com/hook?x=1&y=2#frag",
        "HTTPS://Example.COM:8443/a/b",
        "http://10.0.0.1:8080/cb",
        "http://[2001:db8::1]:9000/cb",
        "https://user:pw@hooks.example.com/",
        "https://example.com/" + "a" * (MAX_NOTIFY_HOOK_CHARS - len("https://example.com/")),
    ],
)
def test_notify_hook_accepted(hook: str | None) -> None:
    check_notify_hook(hook)


@pytest.mark.parametrize(
    ("hook", "reason"),
    [
        ("https://example.com/" + "a" * (MAX_NOTIFY_HOOK_CHARS - 19), "longer than 2048"),
        ("ftp://example.com/hook", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("example.com/hook", "http or https"),
        ("//example.com/hook", "http or https"),
        ("http://", "no host"),
        ("http:///path", "no host"),
        ("https://:443/x", "no host"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://example.com:port/", "not a valid URL"),
        ("http://[::1/", "not a valid URL"),
        ("http://example.com/a b", "spaces or control"),
        ("http://example.com/\nX-Injected: 1", "spaces or control"),
        ("http://exa\tmple.com/", "spaces or control"),
        (" http://example.com/", "spaces or control"),
    ],
)
def test_notify_hook_refused(hook: str, reason: str) -> None:
    description = bad_request(check_notify_hook, hook)
    assert description.startswith("notifyHook: ")
    assert reason in description


def test_notify_hook_length_boundary_is_exact() -> None:
    base = "https://example.com/"
    check_notify_hook(base + "a" * (MAX_NOTIFY_HOOK_CHARS - len(base)))
    with pytest.raises(BadRequest):
        check_notify_hook(base + "a" * (MAX_NOTIFY_HOOK_CHARS - len(base) + 1))


# mode_from


@pytest.mark.parametrize(
    ("path_mode", "modes", "prompt", "expected"),
    [
        (None, None, None, "FAST"),
        (None, None, "a cat", "FAST"),
        (None, [], "a cat", "FAST"),
        ("RELAX", ["TURBO"], "a cat --fast", "RELAX"),
        ("turbo", None, "a cat --relax", "TURBO"),
        ("fast", ["RELAX"], None, "FAST"),
        (None, ["TURBO", "RELAX"], "a cat --relax", "TURBO"),
        (None, ["RELAX"], None, "RELAX"),
        (None, [], "a cat --relax", "RELAX"),
        (None, None, "a cat --turbo --v 6", "TURBO"),
        (None, None, "--relax a cat", "RELAX"),
        (None, None, "a cat --turbo --relax", "RELAX"),
        (None, None, "a cat --relax --fast", "FAST"),
        (None, None, "a cat --RELAX", "RELAX"),
        (None, None, "a cat \u2014turbo", "TURBO"),
        (None, None, "a cat --relaxed", "FAST"),
        (None, None, "a cat --turbo-mode", "FAST"),
        (None, None, "a cat x--relax", "FAST"),
        (None, None, "a cat ---relax", "FAST"),
        (None, None, "a cat -relax", "FAST"),
        (None, None, "a cat relax turbo", "FAST"),
        (None, None, "a cat --relax\n", "RELAX"),
        (None, None, "a cat --relax, --turbo-x", "RELAX"),
    ],
)
def test_mode_precedence(
    path_mode: str | None, modes: list[str] | None, prompt: str | None, expected: str
) -> None:
    assert mode_from(path_mode, modes, prompt) == expected


def test_mode_from_refuses_a_path_mode_that_is_not_a_mode() -> None:
    with pytest.raises(ValueError, match="SLOW"):
        mode_from("SLOW", None, None)


# parse_simple_change


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("1712345678901234 U1", ("1712345678901234", "UPSCALE", 1)),
        ("1712345678901234 U4", ("1712345678901234", "UPSCALE", 4)),
        ("1712345678901234 v2", ("1712345678901234", "VARIATION", 2)),
        ("1712345678901234 V4", ("1712345678901234", "VARIATION", 4)),
        ("1712345678901234 R", ("1712345678901234", "REROLL", None)),
        ("1712345678901234 r", ("1712345678901234", "REROLL", None)),
        ("  42    u3  ", ("42", "UPSCALE", 3)),
        ("42\tV1", ("42", "VARIATION", 1)),
        ("9" * MAX_TASK_ID_CHARS + " R", ("9" * MAX_TASK_ID_CHARS, "REROLL", None)),
    ],
)
def test_simple_change_forms(content: str, expected: tuple[str, str, int | None]) -> None:
    assert parse_simple_change(content) == expected


@pytest.mark.parametrize(
    "content",
    [
        "",
        "   ",
        "42",
        "U1",
        "42 U",
        "42 U0",
        "42 U5",
        "42 V9",
        "42 X1",
        "42 R1",
        "42 RR",
        "42 U1 extra",
        "42U1",
        "42 U 1",
        "42 UPSCALE",
    ],
)
def test_simple_change_refused(content: str) -> None:
    assert bad_request(parse_simple_change, content).startswith("content: ")


def test_simple_change_task_id_length() -> None:
    description = bad_request(parse_simple_change, "9" * (MAX_TASK_ID_CHARS + 1) + " U1")
    assert "longer than 32" in description


# check_change


@pytest.mark.parametrize("action", ["UPSCALE", "VARIATION"])
def test_change_needs_an_index_for_upscale_and_variation(action: str) -> None:
    body = decode_json(ChangeBody, encode({"taskId": "1", "action": action}), LIMIT)
    description = bad_request(check_change, body)
    assert description == f"index: required for {action}"
    check_change(
        decode_json(ChangeBody, encode({"taskId": "1", "action": action, "index": 3}), LIMIT)
    )


@pytest.mark.parametrize("index", [None, 2, 7])
def test_reroll_ignores_the_index(index: int | None) -> None:
    check_change(ChangeBody(taskId="1", action="REROLL", index=index))


@pytest.mark.parametrize("index", [0, 5])
def test_change_index_range_checked_on_constructed_bodies(index: int) -> None:
    body = ChangeBody(taskId="1", action="UPSCALE", index=index)
    assert bad_request(check_change, body) == "index: must be between 1 and 4"


# validate


def test_imagine_with_good_images_and_hook_passes() -> None:
    validate(
        ImagineBody(
            prompt="a cat",
            base64Array=[image_url("png"), image_url("jpeg")],
            notifyHook="https://example.com/h",
        )
    )


def test_imagine_names_the_bad_image_by_index() -> None:
    body = ImagineBody(prompt="a cat", base64Array=[image_url("png"), data_url("png", b"GIF89a..")])
    assert bad_request(validate, body).startswith("base64Array[1]: image is not a PNG as declared")


@pytest.mark.parametrize("kind", [ImagineBody, ShortenBody])
def test_blank_prompt_is_refused(kind: type[ImagineBody] | type[ShortenBody]) -> None:
    assert bad_request(validate, kind(prompt=" \t\n")) == "prompt: must not be blank"


@pytest.mark.parametrize(
    "body",
    [
        ImagineBody(prompt="p", notifyHook="ftp://x/"),
        BlendBody(base64Array=[image_url("png"), image_url("gif")], notifyHook="ftp://x/"),
        DescribeBody(base64=image_url("webp"), notifyHook="ftp://x/"),
        ShortenBody(prompt="p", notifyHook="ftp://x/"),
        ActionBody(taskId="1", customId="MJ::JOB::upsample::1::h", notifyHook="ftp://x/"),
        ModalBody(taskId="1", notifyHook="ftp://x/"),
        ChangeBody(taskId="1", action="REROLL", notifyHook="ftp://x/"),
        SimpleChangeBody(content="1 R", notifyHook="ftp://x/"),
        SwapFaceBody(
            sourceBase64=image_url("png"), targetBase64=image_url("jpeg"), notifyHook="ftp://x/"
        ),
    ],
)
def test_every_submit_checks_its_notify_hook(body: Any) -> None:
    assert bad_request(validate, body).startswith("notifyHook: ")
    body.notifyHook = "https://example.com/hook"
    validate(body)


def test_blend_checks_every_image() -> None:
    body = BlendBody(base64Array=[image_url("png"), image_url("png"), "data:image/png;base64,@"])
    assert bad_request(validate, body) == "base64Array[2]: image is not valid base64"


def test_describe_checks_its_image() -> None:
    body = DescribeBody(base64=data_url("webp", image_bytes("png")))
    assert bad_request(validate, body).startswith("base64: image is not a WEBP as declared")


def test_modal_mask_is_checked_when_present() -> None:
    validate(ModalBody(taskId="1", prompt="--zoom 2"))
    validate(ModalBody(taskId="1", maskBase64=""))
    validate(ModalBody(taskId="1", maskBase64=image_url("png")))
    body = ModalBody(taskId="1", maskBase64=data_url("png", image_bytes("jpeg")))
    assert bad_request(validate, body).startswith("maskBase64: image is not a PNG")


def test_change_and_simple_change_are_checked() -> None:
    assert bad_request(validate, ChangeBody(taskId="1", action="UPSCALE")).startswith("index: ")
    validate(ChangeBody(taskId="1", action="UPSCALE", index=1))
    assert bad_request(validate, SimpleChangeBody(content="1 U9")).startswith("content: ")
    validate(SimpleChangeBody(content="1 V3"))


def test_upload_checks_every_image() -> None:
    validate(UploadBody(base64Array=[image_url("gif")], filter={"instanceId": "x"}))
    body = UploadBody(base64Array=[image_url("gif"), "data:image/gif;base64,"])
    assert bad_request(validate, body) == "base64Array[1]: image is empty"


def test_swap_needs_two_different_valid_images() -> None:
    validate(SwapFaceBody(sourceBase64=image_url("png"), targetBase64=image_url("png", (1, 2, 3))))
    same = image_url("jpeg")
    assert bad_request(validate, SwapFaceBody(sourceBase64=same, targetBase64=same)).startswith(
        "targetBase64: must be a different image"
    )
    bad_target = SwapFaceBody(sourceBase64=same, targetBase64=data_url("gif", image_bytes("png")))
    assert bad_request(validate, bad_target).startswith("targetBase64: image is not a GIF")
    bad_source = SwapFaceBody(sourceBase64="data:image/png;base64,!", targetBase64=same)
    assert bad_request(validate, bad_source) == "sourceBase64: image is not valid base64"


def test_validate_uses_the_given_image_limit() -> None:
    body = DescribeBody(base64=image_url("jpeg"))
    validate(body)
    assert "larger than 10 bytes" in bad_request(lambda: validate(body, max_image_bytes=10))


def test_list_by_condition_needs_nothing_more() -> None:
    validate(ListByConditionBody(ids=["1", "2"]))


def test_decoded_bodies_flow_into_validate() -> None:
    raw = encode(
        {
            "prompt": "a cat --relax",
            "base64Array": [image_url("webp")],
            "accountFilter": {"modes": []},
            "notifyHook": "",
            "state": "",
        }
    )
    body = decode_json(ImagineBody, raw, LIMIT)
    validate(body)
    modes = body.accountFilter.modes if body.accountFilter else None
    assert mode_from(None, modes, body.prompt) == "RELAX"


def test_jpg_and_bare_base64_are_images_of_the_type_their_bytes_show() -> None:
    jpeg = base64.b64encode(image_bytes("jpeg")).decode()
    png = base64.b64encode(image_bytes("png")).decode()
    assert check_image("base64", f"data:image/jpg;base64,{jpeg}") == "image/jpeg"
    assert check_image("base64", jpeg) == "image/jpeg"
    assert check_image("maskBase64", png) == "image/png"
    body = validate(ImagineBody(prompt="a cat", base64Array=[f"data:image/jpg;base64,{jpeg}", png]))
    assert body.base64Array == [f"data:image/jpeg;base64,{jpeg}", f"data:image/png;base64,{png}"]
    modal = validate(ModalBody(taskId="1", prompt="a", maskBase64=png))
    assert modal.maskBase64 == f"data:image/png;base64,{png}"
    not_an_image = base64.b64encode(b"just some text here").decode()
    assert "is not a PNG, JPEG, WEBP or GIF" in bad_request(check_image, "base64", not_an_image)
