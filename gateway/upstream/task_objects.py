"""Reading an upstream's task objects into the gateway's columns. Pure (a list's objects are
read in turns of the event loop, ``gateway.eventloop.in_turns``).

Upstreams differ in small ways (missing keys, numbers as strings, null lists), which are read
leniently. What cannot be stored or shown as it is, is refused, one object at a time, with an
``UnfitTaskObject`` whose ``reason`` is one of a fixed few (a metric label) and whose message
says more: an id that is not a short text or number, an unknown status, a progress that is not
``"<0-100>%"``, a time outside 0..2^53 ms, text longer than ``MAX_TEXT_CHARS``, an ``imageUrl``
that is not http(s), buttons or properties of the wrong shape, or JSON that
``gateway.json_input`` refuses (deep nesting, bad UTF-8, NUL). Of ``imageUrls``, ``videoUrl``
and ``videoUrls``, what is not an http(s) URL is left out. A refused object changes nothing: its
task stays as it was, and ends by its timeout if the channel never sends a fit one.

The upstream's ``notifyHook`` property is the gateway's own callback URL, whose token is a
credential: it is never kept.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway import eventloop, json_input
from gateway.domain import UpstreamTaskUpdate

UPSTREAM_STATUSES = frozenset(
    {"NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS", "FAILURE", "SUCCESS", "CANCEL"}
)
MAX_ID_CHARS = 64
MAX_TEXT_CHARS = 65_536
MAX_URL_CHARS = 4096
MAX_BUTTONS = 64
MAX_MEDIA_ITEMS = 16  # single images or videos of one result
MAX_MILLIS = 2**53 - 1
DROPPED_PROPERTIES = frozenset({"notifyHook"})
OBJECTS_PER_TURN = 10  # of a list, read before the event loop gets a turn (each some 25 us)

_PROGRESS = re.compile(r"([0-9]{1,3})%?", re.ASCII)
_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]+", re.ASCII | re.IGNORECASE)


class UnfitTaskObject(ValueError):
    """An upstream task object the gateway will not apply; ``reason`` is a metric label, and
    ``upstream_task_id`` the object's id when it could be read."""

    def __init__(self, reason: str, detail: str, upstream_task_id: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.upstream_task_id = upstream_task_id
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True, slots=True)
class TaskObjects:
    """What one list of task objects held: those fit to apply, why the others were not, and
    which were byte for byte the ones the reader already had (not read again)."""

    updates: list[UpstreamTaskUpdate] = field(default_factory=list)
    refused: list[UnfitTaskObject] = field(default_factory=list)
    digests: dict[str, bytes] = field(default_factory=dict)  # upstream id -> ``digest``
    unchanged: list[str] = field(default_factory=list)  # upstream ids

    def upstream_ids(self) -> set[str]:
        """The ids of every object that had a readable one, fit or not: tasks the channel has."""
        ids = {update.upstream_task_id for update in self.updates}
        ids.update(unfit.upstream_task_id for unfit in self.refused if unfit.upstream_task_id)
        ids.update(self.unchanged)
        return ids


def digest(raw: bytes) -> bytes:
    """What tells one task object's bytes from another's (16 bytes of BLAKE2b)."""
    return hashlib.blake2b(raw, digest_size=16).digest()


def _text(name: str, value: Any, limit: int = MAX_TEXT_CHARS) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UnfitTaskObject("text", f"{name} is not text")
    if len(value) > limit:
        raise UnfitTaskObject("text", f"{name} is longer than {limit} characters")
    return value


def _millis(name: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MILLIS:
        raise UnfitTaskObject("time", f"{name} is not a time in epoch ms")
    return value


def _progress(value: Any) -> str:
    if value is None or value == "":
        return ""
    match = _PROGRESS.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) > 100:
        raise UnfitTaskObject("progress", "progress is not a percentage")
    return f"{int(match.group(1))}%"


def _image_url(value: Any) -> str | None:
    url = _text("imageUrl", value, MAX_URL_CHARS)
    if url is not None and _URL.fullmatch(url) is None:
        raise UnfitTaskObject("image_url", "imageUrl is not an http(s) URL")
    return url


def _media_items(value: Any) -> list[dict[str, str | None]]:
    """``[{url, thumbnail}]`` (a bare URL is taken as ``{url}``), at most ``MAX_MEDIA_ITEMS``.
    An item that is not a fit http(s) URL is left out, and so is a thumbnail that is not: the
    rest of the task object stands."""
    items: list[dict[str, str | None]] = []
    for item in value if isinstance(value, list) else []:
        entry = item if isinstance(item, dict) else {"url": item}
        url, thumbnail = entry.get("url"), entry.get("thumbnail")
        if _fit_url(url):
            items.append({"url": url, "thumbnail": thumbnail if _fit_url(thumbnail) else None})
    return items[:MAX_MEDIA_ITEMS]


def _fit_url(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) <= MAX_URL_CHARS and _URL.fullmatch(value) is not None
    )


def _media(obj: dict[str, Any]) -> dict[str, Any]:
    """The single images of a grid and the videos, where the upstream gives them. A lone
    ``videoUrl`` is the one video; else it is the first of ``videoUrls``."""
    media: dict[str, Any] = {}
    images = _media_items(obj.get("imageUrls"))
    videos = _media_items(obj.get("videoUrls"))
    video = obj.get("videoUrl")
    if _fit_url(video) and all(item["url"] != video for item in videos):
        videos.insert(0, {"url": video, "thumbnail": None})
    if images:
        media["images"] = images
    if videos:
        media["videos"] = videos
    return media


def _button(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnfitTaskObject("buttons", "a button is not an object")
    custom_id = value.get("customId")
    if not isinstance(custom_id, str) or not 0 < len(custom_id) <= 512:
        raise UnfitTaskObject("buttons", "a button has no customId")
    emoji, label = value.get("emoji"), value.get("label")
    kind, style = value.get("type"), value.get("style")
    if not (_short_text(emoji) and _short_text(label)):
        raise UnfitTaskObject("buttons", "a button's emoji or label is not short text")
    if not (_small_number(kind) and _small_number(style)):
        raise UnfitTaskObject("buttons", "a button's type or style is not a small number")
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": kind, "style": style}


# A list's objects carry some ten buttons each: these two are written out rather than as
# generator expressions, which took half of a button's reading.
def _short_text(value: Any) -> bool:
    return value is None or (isinstance(value, str) and len(value) <= 256)


def _small_number(value: Any) -> bool:
    return value is None or (isinstance(value, int) and 0 <= value < 2**31)


def _buttons(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_BUTTONS:
        raise UnfitTaskObject("buttons", f"buttons is not a list of at most {MAX_BUTTONS}")
    return [_button(button) for button in value]


def _properties(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UnfitTaskObject("properties", "properties is not an object")
    return {k: v for k, v in value.items() if k not in DROPPED_PROPERTIES}


def parse_task_object(obj: Any) -> UpstreamTaskUpdate:
    """One decoded task object, or ``UnfitTaskObject``."""
    if not isinstance(obj, dict):
        raise UnfitTaskObject("shape", "not an object")
    upstream_id = obj.get("id")
    if isinstance(upstream_id, bool) or not isinstance(upstream_id, str | int):
        raise UnfitTaskObject("id", "id is not a text or number")
    upstream_id = str(upstream_id)
    if not 0 < len(upstream_id) <= MAX_ID_CHARS:
        raise UnfitTaskObject("id", f"id is empty or longer than {MAX_ID_CHARS} characters")
    try:
        return _update(upstream_id, obj)
    except UnfitTaskObject as unfit:
        raise UnfitTaskObject(unfit.reason, unfit.detail, upstream_id) from None


def _update(upstream_id: str, obj: dict[str, Any]) -> UpstreamTaskUpdate:
    status = obj.get("status")
    if not isinstance(status, str) or status not in UPSTREAM_STATUSES:
        raise UnfitTaskObject("status", "status is not a task status")
    return UpstreamTaskUpdate(
        upstream_task_id=upstream_id,
        action=_text("action", obj.get("action"), 64),
        status=status,
        progress=_progress(obj.get("progress")),
        prompt=_text("prompt", obj.get("prompt")),
        prompt_en=_text("promptEn", obj.get("promptEn")),
        description=_text("description", obj.get("description")),
        start_time_ms=_millis("startTime", obj.get("startTime")),
        finish_time_ms=_millis("finishTime", obj.get("finishTime")),
        image_url=_image_url(obj.get("imageUrl")),
        fail_reason=_text("failReason", obj.get("failReason")),
        buttons=_buttons(obj.get("buttons")),
        properties=_properties(obj.get("properties")),
        media=_media(obj),
    )


def read_task_object(raw: bytes) -> UpstreamTaskUpdate:
    """One task object from its JSON (a callback's body, an item of a list)."""
    try:
        obj: Any = json_input.decode(raw)
    except json_input.JsonInputError as error:
        upstream_id = json_input.top_level_scalar(raw, "id")
        raise UnfitTaskObject("json", str(error), upstream_id) from None
    return parse_task_object(obj)


async def read_task_list(raw: bytes, known: Mapping[bytes, str] | None = None) -> TaskObjects:
    """A list-by-condition answer: every item read on its own, ``OBJECTS_PER_TURN`` at a time
    (``eventloop.in_turns``). An empty body is no tasks; ``json_input.JsonInputError`` when the
    answer is not a JSON array at all.

    ``known``: the ``digest`` of objects the caller already has, with their upstream ids. An
    item with one of those digests is the same object: it is listed as unchanged, not read."""
    if not raw.strip():
        return TaskObjects()
    read = TaskObjects()
    async for item in eventloop.in_turns(json_input.array_items(raw), OBJECTS_PER_TURN):
        item_digest = digest(item)
        if known and (upstream_id := known.get(item_digest)) is not None:
            read.unchanged.append(upstream_id)
            continue
        try:
            update = read_task_object(item)
        except UnfitTaskObject as unfit:
            read.refused.append(unfit)
        else:
            read.updates.append(update)
            read.digests[update.upstream_task_id] = item_digest
    return read
