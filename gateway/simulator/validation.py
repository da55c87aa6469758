"""Reading request bodies the way the proxies do, and their field checks.

Two kinds of refusal: ``BadRequest`` is what Spring/Jackson answers before the controller runs
(HTTP 400: bad JSON, a wrong JSON type, an unknown enum name); ``Invalid`` is a controller check
answered as code 4 with the proxy's message.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from gateway.simulator import protocol
from gateway.simulator.protocol import Mode, TaskAction

E = TypeVar("E", bound=StrEnum)

BANNED_WORDS = frozenset({"nsfwword", "bannedword", "forbiddenword"})
"""The built-in banned-word list: a prompt holding one is answered 24 with it as bannedWord."""

_WORD = re.compile(r"[\w-]+")
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.ASCII)
_ZOOM = re.compile(r"--zoom\s+(\d+(?:\.\d+)?)\b")
_SIMPLE_CHANGE = re.compile(r"(\S+)\s+(?:([UV])([1-4])|R)", re.IGNORECASE)


class BadRequest(Exception):
    """The body cannot be bound to the endpoint's DTO (HTTP 400, Spring error body)."""


class Invalid(Exception):
    """A validation failure answered as code 4; the message is the proxy's description."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Body:
    """A JSON object body with typed, Jackson-like accessors (numbers coerce to strings)."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, object]) -> None:
        self._data = data

    @classmethod
    def parse(cls, raw: bytes) -> Body:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise BadRequest("malformed JSON") from error
        if not isinstance(data, dict):
            raise BadRequest("body is not a JSON object")
        return cls(data)

    def fields(self) -> dict[str, object]:
        return dict(self._data)

    def has(self, name: str) -> bool:
        return name in self._data

    def text(self, name: str) -> str | None:
        value = self._data.get(name)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise BadRequest(f"{name} is not a string")

    def texts(self, name: str) -> list[str] | None:
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise BadRequest(f"{name} is not a list of strings")
        return list(value)

    def integer(self, name: str) -> int | None:
        value = self._data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise BadRequest(f"{name} is not an integer")
        try:
            return int(value)
        except ValueError as error:
            raise BadRequest(f"{name} is not an integer") from error

    def enum(self, name: str, enum_type: type[E]) -> E | None:
        return parse_enum(self.text(name), enum_type, name)

    def child(self, name: str) -> Body | None:
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise BadRequest(f"{name} is not an object")
        return Body(value)


def parse_enum(value: str | None, enum_type: type[E], name: str) -> E | None:
    if value is None:
        return None
    try:
        return enum_type(value)
    except ValueError as error:
        raise BadRequest(f"{name}: unknown value {value!r}") from error


@dataclass(frozen=True, slots=True)
class AccountFilter:
    mode: Mode | None = None
    instance_id: str | None = None


def account_filter(body: Body) -> AccountFilter:
    """``accountFilter.modes[0]`` and ``accountFilter.instanceId``; unknown modes are a 400."""
    node = body.child("accountFilter")
    if node is None:
        return AccountFilter()
    modes = [parse_enum(mode, Mode, "modes") for mode in node.texts("modes") or []]
    return AccountFilter(modes[0] if modes else None, node.text("instanceId") or None)


@dataclass(frozen=True, slots=True)
class DataUrl:
    mime_type: str
    data: bytes

    @property
    def suffix(self) -> str:
        subtype = self.mime_type.partition("/")[2].lower()
        return {"jpeg": "jpg", "svg+xml": "svg"}.get(subtype, subtype or "png")


def decode_data_url(value: str) -> DataUrl:
    """``data:<mime>;base64,<payload>`` with a payload that decodes; else ``base64格式错误``."""
    match = _DATA_URL.match(value)
    if match is None:
        raise Invalid(protocol.BASE64_INVALID)
    try:
        data = base64.b64decode(value[match.end() :], validate=True)
    except (binascii.Error, ValueError) as error:
        raise Invalid(protocol.BASE64_INVALID) from error
    return DataUrl(match.group(1), data)


def decode_data_urls(values: list[str]) -> list[DataUrl]:
    return [decode_data_url(value) for value in values]


def banned_word(prompt: str) -> str | None:
    """The first built-in banned word the prompt holds as a whole word, case-insensitively."""
    words: list[str] = _WORD.findall(prompt.lower())
    return next((word for word in words if word in BANNED_WORDS), None)


def zoom_is_valid(prompt: str) -> bool:
    """Custom Zoom's modal prompt must hold ``--zoom z`` with 1 <= z <= 2."""
    match = _ZOOM.search(prompt)
    return match is not None and 1.0 <= float(match.group(1)) <= 2.0


@dataclass(frozen=True, slots=True)
class ChangeParams:
    task_id: str
    action: TaskAction
    index: int


def parse_simple_change(content: str | None) -> ChangeParams:
    """``"<taskId> U1..U4|V1..V4|R"`` of /submit/simple-change; else ``content参数错误``."""
    match = _SIMPLE_CHANGE.fullmatch((content or "").strip())
    if match is None:
        raise Invalid(protocol.CONTENT_INVALID)
    task_id, letter, index = match.groups()
    if letter is None:
        return ChangeParams(task_id, TaskAction.REROLL, 0)
    action = TaskAction.UPSCALE if letter.upper() == "U" else TaskAction.VARIATION
    return ChangeParams(task_id, action, int(index))
