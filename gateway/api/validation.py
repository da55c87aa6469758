"""Input validation of the client-facing ``/mj`` API: pure functions, no I/O.

This module owns everything the contract says about input that a schema cannot express: decoding a
body into its Struct (size limit, JSON, types, lengths), image data URLs (declared MIME, strict
base64, decoded size, real format by magic number), the shape of a notifyHook URL, the speed mode,
the legacy change forms, and cross-field rules. Every refusal is ``BadRequest`` (400/21) whose
description starts with the offending field, except an oversized body (``PayloadTooLarge``,
413/21). Address-based SSRF checks of notifyHook are not here: they need DNS.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Literal, TypeVar, assert_never, cast
from urllib.parse import urlsplit

import msgspec

from gateway import json_input
from gateway.api.schemas import (
    MAX_NOTIFY_HOOK_CHARS,
    MAX_TASK_ID_CHARS,
    ActionBody,
    BlendBody,
    ChangeAction,
    ChangeBody,
    DescribeBody,
    EditBody,
    ImagineBody,
    ListByConditionBody,
    ModalBody,
    Mode,
    RequestBody,
    ShortenBody,
    SimpleChangeBody,
    SwapFaceBody,
    UploadBody,
    VideoBody,
)
from gateway.errors import BadRequest, PayloadTooLarge
from gateway.media.files import sniff

T = TypeVar("T")
Body = TypeVar("Body", bound=RequestBody)

MAX_IMAGE_BYTES = 4 * 1024 * 1024
"""The contract's limit on one image, after base64 decoding."""
MAX_URL_CHARS = MAX_NOTIFY_HOOK_CHARS
VIDEO_MOTIONS = ("low", "high")
VIDEO_TYPES = ("vid_1.1_i2v_480", "vid_1.1_i2v_720")
VIDEO_BATCH_SIZES = (1, 2, 4)

ImageMime = Literal["image/png", "image/jpeg", "image/webp", "image/gif"]

_DATA_URL = re.compile(r"data:image/(png|jpeg|jpg|webp|gif);base64,", re.IGNORECASE | re.ASCII)
_BARE_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}", re.ASCII)
_FORMAT_NAMES: dict[str, str] = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
}
_MODES: dict[str, Mode] = {"FAST": "FAST", "RELAX": "RELAX", "TURBO": "TURBO"}
_MODE_FLAG = re.compile(r"(?<![\w-])(?:--|\u2014)(fast|relax|turbo)(?![\w-])", re.IGNORECASE)
_SIMPLE_CHANGE = re.compile(r"(\S+)\s+(?:([UV])([1-4])|R)", re.IGNORECASE)
_CHANGE_ACTIONS: dict[str, ChangeAction] = {"U": "UPSCALE", "V": "VARIATION"}


def decode_json(kind: type[T], body: bytes, max_body_bytes: int) -> T:
    """Decode a request body into ``kind``, enforcing every constraint declared on the schema.

    Raises ``PayloadTooLarge`` when ``body`` is longer than ``max_body_bytes`` (checked before
    parsing), and ``BadRequest`` for what ``gateway.json_input.decode`` refuses (malformed JSON,
    deep nesting, text that is not UTF-8, NUL characters), a non-object body, a missing field, a
    wrong type, an unknown enum name or a broken length/count/range; the description carries
    msgspec's message with the field path, e.g. ``invalid request: Expected `str`, got `int` -
    at `$.prompt```.
    """
    if len(body) > max_body_bytes:
        raise PayloadTooLarge(f"request body exceeds {max_body_bytes} bytes")
    try:
        return json_input.decode(body, kind)
    except msgspec.ValidationError as error:
        raise BadRequest(f"invalid request: {error}") from None
    except json_input.JsonInputError as error:
        raise BadRequest(f"invalid request: {error}") from None


def check_image(field: str, value: str, max_bytes: int = MAX_IMAGE_BYTES) -> ImageMime:
    """Check one image and return its MIME type (lower case).

    The value is ``data:image/(png|jpeg|jpg|webp|gif);base64,<payload>`` (``jpg`` is a common
    client spelling of ``jpeg``) or, as web clients send masks and images, the bare base64
    payload alone, whose type is read from its bytes. The payload must be strictly valid, padded
    base64 decoding to 1..``max_bytes`` bytes whose magic number is the declared format. Only
    the header is inspected, never the whole image. ``field`` names the value in errors, e.g.
    ``base64Array[1]``.
    """
    return _decode_image(field, value, max_bytes)[0]


def check_notify_hook(value: str | None) -> None:
    """Refuse a notifyHook that is not an http(s) URL with a host, of at most 2,048 characters.

    ``None`` and the empty string both mean "no hook" (clients commonly send ``""``).
    """
    if value:
        _check_url("notifyHook", value)


def _check_url(field: str, value: str) -> None:
    """An http(s) URL with a host, of at most 2,048 printable characters and no spaces."""
    if len(value) > MAX_URL_CHARS:
        raise BadRequest(f"{field}: longer than {MAX_URL_CHARS} characters")
    if any(char.isspace() or not char.isprintable() for char in value):
        raise BadRequest(f"{field}: must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        raise BadRequest(f"{field}: not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise BadRequest(f"{field}: must be an http or https URL")
    if not host:
        raise BadRequest(f"{field}: the URL has no host")


def mode_from(
    path_mode: str | None, account_filter_modes: Sequence[str] | None, prompt: str | None
) -> Mode:
    """The speed mode of a submit, by the contract's order of precedence.

    First ``path_mode`` (from ``/mj-fast``, ``/mj-relax``, ``/mj-turbo``; any case), then the first
    of ``accountFilter.modes``, then a ``--fast``/``--relax``/``--turbo`` flag standing as a word in
    the prompt (the last one wins; Midjourney's em-dash spelling counts too), else FAST. A
    ``path_mode`` or filter mode that is not a mode name is a programming error (``ValueError``):
    routes and the schema only let the three names through.
    """
    if path_mode is not None:
        return _mode(path_mode)
    if account_filter_modes:
        return _mode(account_filter_modes[0])
    if prompt:
        flags = _MODE_FLAG.findall(prompt)
        if flags:
            return _mode(flags[-1])
    return "FAST"


def without_mode_flags(prompt: str) -> str:
    """``prompt`` without ``--fast``/``--relax``/``--turbo``: the mode travels upstream in
    ``accountFilter.modes``, so a flag can never run a task faster than it was priced."""
    return " ".join(_MODE_FLAG.sub(" ", prompt).split())


def parse_simple_change(content: str) -> tuple[str, ChangeAction, int | None]:
    """Parse a legacy simple-change ``content``: ``"<taskId> U1..U4|V1..V4|R"``.

    The letter is case-insensitive, blanks around and between the parts are tolerated. Returns
    ``(task_id, action, index)`` with ``index`` None for REROLL.
    """
    match = _SIMPLE_CHANGE.fullmatch(content.strip())
    if match is None:
        raise BadRequest('content: expected "<taskId> U1..U4|V1..V4|R", e.g. "1712345678901234 U2"')
    task_id, letter, digit = match.groups()
    if len(task_id) > MAX_TASK_ID_CHARS:
        raise BadRequest(f"content: task id longer than {MAX_TASK_ID_CHARS} characters")
    if letter is None:
        return task_id, "REROLL", None
    return task_id, _CHANGE_ACTIONS[letter.upper()], int(digit)


def check_change(body: ChangeBody) -> None:
    """UPSCALE and VARIATION need ``index`` in 1..4; REROLL ignores any index."""
    if body.action == "REROLL":
        return
    if body.index is None:
        raise BadRequest(f"index: required for {body.action}")
    if not 1 <= body.index <= 4:
        raise BadRequest("index: must be between 1 and 4")


def validate(body: Body, *, max_image_bytes: int = MAX_IMAGE_BYTES) -> Body:
    """Run the checks a schema cannot express on a body that ``decode_json`` produced; the body,
    with every image as the data URL of its true type (what upstreams take).

    Every image field (``base64Array`` items, ``base64``, ``sourceBase64``, ``targetBase64``,
    ``maskBase64``) goes through ``check_image``, ``notifyHook`` through ``check_notify_hook``;
    prompts must not be blank; change and simple-change forms must be complete; a face swap needs
    two different images.
    """
    checked: RequestBody = body
    match checked:
        case ImagineBody():
            _check_prompt(checked.prompt)
            images = _images("base64Array", checked.base64Array, max_image_bytes)
            checked = msgspec.structs.replace(checked, base64Array=images)
        case BlendBody():
            images = _images("base64Array", checked.base64Array, max_image_bytes)
            checked = msgspec.structs.replace(checked, base64Array=images)
        case DescribeBody():
            image = _decode_image("base64", checked.base64, max_image_bytes)[2]
            checked = msgspec.structs.replace(checked, base64=image)
        case ShortenBody():
            _check_prompt(checked.prompt)
        case ActionBody():
            pass
        case ModalBody():
            if checked.maskBase64:
                mask = _decode_image("maskBase64", checked.maskBase64, max_image_bytes)[2]
                checked = msgspec.structs.replace(checked, maskBase64=mask)
        case ChangeBody():
            check_change(checked)
        case SimpleChangeBody():
            parse_simple_change(checked.content)
        case UploadBody():
            images = _images("base64Array", checked.base64Array, max_image_bytes)
            return cast(Body, msgspec.structs.replace(checked, base64Array=images))
        case SwapFaceBody():
            _, source, source_url = _decode_image(
                "sourceBase64", checked.sourceBase64, max_image_bytes
            )
            _, target, target_url = _decode_image(
                "targetBase64", checked.targetBase64, max_image_bytes
            )
            if source == target:
                raise BadRequest("targetBase64: must be a different image from sourceBase64")
            checked = msgspec.structs.replace(
                checked, sourceBase64=source_url, targetBase64=target_url
            )
        case VideoBody():
            _check_prompt(checked.prompt)
            checked = _checked_video(checked, max_image_bytes)
        case EditBody():
            _check_prompt(checked.prompt)
            image = _image_or_url("image", checked.image, max_image_bytes)
            checked = msgspec.structs.replace(checked, image=image)
        case ListByConditionBody():
            return body
        case _:
            assert_never(checked)
    check_notify_hook(checked.notifyHook)
    return cast(Body, checked)


def _checked_video(body: VideoBody, max_image_bytes: int) -> VideoBody:
    """The video body with every default filled in, numbers and booleans as such, and its
    images as data URLs or URLs."""
    motion = (body.motion or VIDEO_MOTIONS[0]).lower()
    if motion not in VIDEO_MOTIONS:
        raise BadRequest("motion: must be low or high")
    video_type = body.videoType or VIDEO_TYPES[0]
    if video_type not in VIDEO_TYPES:
        raise BadRequest(f"videoType: must be one of {', '.join(VIDEO_TYPES)}")
    batch_size = _number("batchSize", body.batchSize, 4)
    if batch_size not in VIDEO_BATCH_SIZES:
        raise BadRequest("batchSize: must be 1, 2 or 4")
    loop = body.loop if isinstance(body.loop, bool) else _flag("loop", body.loop)
    defaults = {"motion": motion, "videoType": video_type, "batchSize": batch_size, "loop": loop}
    if not body.action:
        if not body.image:
            raise BadRequest("image: required for a new video (its first frame)")
        end_image = body.endImage and _image_or_url("endImage", body.endImage, max_image_bytes)
        return msgspec.structs.replace(
            body,
            **defaults,
            action=None,
            taskId=None,
            index=None,
            image=_image_or_url("image", body.image, max_image_bytes),
            endImage=end_image or None,
        )
    if body.action != "extend":
        raise BadRequest('action: must be "extend", or left out for a new video')
    if not body.taskId:
        raise BadRequest("taskId: required to extend a video")
    if body.image or body.endImage:
        raise BadRequest("image: must be left out when extending a video")
    index = _number("index", body.index, 0)
    if not 0 <= index <= 3:
        raise BadRequest("index: must be between 0 and 3")
    return msgspec.structs.replace(body, **defaults, index=index, image=None, endImage=None)


def _number(field: str, value: int | str | None, default: int) -> int:
    """A whole number sent as a number or as text; ``None`` or ``""`` is ``default``."""
    if value is None or value == "":
        return default
    if isinstance(value, int):
        return value
    if value.strip().isdecimal() and value.strip().isascii():
        return int(value)
    raise BadRequest(f"{field}: must be a whole number")


def _flag(field: str, value: str | None) -> bool:
    if value is None or value.strip().lower() in ("", "false", "0"):
        return False
    if value.strip().lower() in ("true", "1"):
        return True
    raise BadRequest(f"{field}: must be true or false")


def _image_or_url(field: str, value: str, max_bytes: int) -> str:
    """An image given as an http(s) URL (kept as it is) or as base64 (a data URL of its type)."""
    if value[:8].lower().startswith(("http://", "https://")):
        _check_url(field, value)
        return value
    return _decode_image(field, value, max_bytes)[2]


def _mode(name: str) -> Mode:
    mode = _MODES.get(name.upper())
    if mode is None:
        raise ValueError(f"not a speed mode: {name!r} (expected one of {sorted(_MODES)})")
    return mode


def _check_prompt(prompt: str) -> None:
    if not prompt.strip():
        raise BadRequest("prompt: must not be blank")


def _images(field: str, values: list[str], max_bytes: int) -> list[str]:
    return [
        _decode_image(f"{field}[{index}]", value, max_bytes)[2]
        for index, value in enumerate(values)
    ]


def _decode_image(field: str, value: str, max_bytes: int) -> tuple[ImageMime, bytes, str]:
    """(type, bytes, the image as the data URL of that type) of a data URL or bare base64."""
    match = _DATA_URL.match(value)
    declared: ImageMime | None
    if match is not None:
        declared = _declared_mime(match.group(1))
        payload = value[match.end() :]
    elif _BARE_BASE64.fullmatch(value):
        declared, payload = None, value
    else:
        raise BadRequest(
            f"{field}: expected a data URL data:image/(png|jpeg|webp|gif);base64,... or the"
            " image's bare base64"
        )
    if len(payload) > 4 * ((max_bytes + 2) // 3):
        raise BadRequest(f"{field}: image larger than {max_bytes} bytes")
    try:
        data = base64.b64decode(payload, validate=True)
    except ValueError:
        raise BadRequest(f"{field}: image is not valid base64") from None
    if not data:
        raise BadRequest(f"{field}: image is empty")
    if len(data) > max_bytes:
        raise BadRequest(f"{field}: image larger than {max_bytes} bytes")
    actual = _sniff(data)
    if declared is None:
        if actual is None:
            raise BadRequest(f"{field}: the bare base64 is not a PNG, JPEG, WEBP or GIF image")
        declared = actual
    elif actual != declared:
        found = f"its bytes are {_FORMAT_NAMES[actual]}" if actual else "unrecognised bytes"
        raise BadRequest(f"{field}: image is not a {_FORMAT_NAMES[declared]} as declared ({found})")
    prefix = f"data:{declared};base64,"
    return declared, data, value if value.startswith(prefix) else prefix + payload


def _declared_mime(subtype: str) -> ImageMime:
    lower = subtype.lower()
    if lower in ("jpeg", "jpg"):
        return "image/jpeg"
    if lower == "png":
        return "image/png"
    if lower == "webp":
        return "image/webp"
    return "image/gif"


def _sniff(data: bytes) -> ImageMime | None:
    found = sniff(data)
    return cast(ImageMime, found) if found in _FORMAT_NAMES else None
