"""Decoding JSON that someone else wrote: client and operator bodies, upstream answers, callbacks.

Every such document goes through ``decode``, which refuses, with a ``JsonInputError`` whose
message can be shown to whoever sent it:

- nesting deeper than ``MAX_DEPTH`` arrays and objects, found on the raw bytes before decoding
  (no request this gateway or an upstream speaks nests more than a few levels);
- text that is not UTF-8, and escapes of lone surrogates (msgspec refuses both);
- ``\\u0000``, which no PostgreSQL text or JSONB value can hold.

Type errors keep msgspec's own exceptions (``msgspec.ValidationError``), whose messages name
the field (``Expected `str`, got `int` - at `$.prompt```).

``array_items`` splits a JSON array into its items undecoded, so that one broken item of an
upstream's list can be refused alone.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

MAX_DEPTH = 32

_ESCAPED_BACKSLASH = b"\\\\"
_ESCAPED_QUOTE = b'\\"'
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")
_STRUCTURE = re.compile(rb"[\[\]{},]")


class JsonInputError(ValueError):
    """A document this gateway will not decode; the message says why, for its sender."""


def _outside_strings(raw: bytes) -> bytes:
    """``raw`` with every JSON string left out (its quotes too): what is left is structure.

    Escaped backslashes, then escaped quotes, are removed first, so every quote left opens or
    closes a string. Only C-speed byte operations: a few passes over the document."""
    unescaped = raw.replace(_ESCAPED_BACKSLASH, b"").replace(_ESCAPED_QUOTE, b"")
    return b"".join(unescaped.split(b'"')[::2])


def too_deep(raw: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in ``raw`` nest deeper than ``max_depth``.

    Each pass removes the innermost empty pairs of a string of brackets only, so a document
    passes in at most ``max_depth`` passes; mismatched brackets are left for the decoder."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False
    brackets = _outside_strings(raw).translate(None, _NOT_BRACKETS)
    for _ in range(max_depth):
        brackets, removed = _INNERMOST.subn(b"", brackets)
        if not brackets or not removed:
            return False
    return _INNERMOST.search(brackets) is not None


def decode(raw: bytes, kind: type[T] | Any = Any, *, max_depth: int = MAX_DEPTH) -> T:
    """``raw`` decoded as ``kind`` (any JSON value by default).

    Raises ``JsonInputError`` for what the module docstring lists and for malformed JSON, and
    ``msgspec.ValidationError`` for a value that is not of ``kind``."""
    if too_deep(raw, max_depth):
        raise JsonInputError(f"nested deeper than {max_depth} levels")
    if b"\\u0000" in raw:
        raise JsonInputError("text must not contain NUL characters")
    try:
        value: T = msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError:
        raise
    except msgspec.DecodeError as error:
        raise JsonInputError(f"malformed JSON ({error})") from None
    except UnicodeDecodeError:
        raise JsonInputError("text is not valid UTF-8") from None
    except RecursionError:  # below MAX_DEPTH only when a caller raised the limit
        raise JsonInputError("nested too deeply") from None
    return value


def array_items(raw: bytes) -> list[bytes]:
    """The items of the JSON array ``raw``, each its own undecoded bytes.

    The common case is one C-speed decode; a document too deep for that is split on the commas
    of its top level. Raises ``JsonInputError`` when ``raw`` is not an array."""
    try:
        return [bytes(item) for item in msgspec.json.decode(raw, type=list[msgspec.Raw])]
    except msgspec.ValidationError:
        raise JsonInputError("not a JSON array") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        pass
    return _split_top_level(raw)


def _masked(raw: bytes) -> bytes:
    """``raw`` with the contents of every string blanked, its length and quotes kept: every
    bracket, brace, comma and quote left in it is structure."""
    parts = raw.replace(_ESCAPED_BACKSLASH, b"__").replace(_ESCAPED_QUOTE, b"__").split(b'"')
    return b'"'.join(p if i % 2 == 0 else b"_" * len(p) for i, p in enumerate(parts))


def _split_top_level(raw: bytes) -> list[bytes]:
    """Split an array the decoder could not skip through on the commas at depth one."""
    masked = _masked(raw)
    start = masked.find(b"[")
    if start < 0 or masked[:start].strip() or masked.rstrip()[-1:] != b"]":
        raise JsonInputError("not a JSON array")
    items: list[bytes] = []
    depth = 0
    item_start = start + 1
    for match in _STRUCTURE.finditer(masked, start):
        char = match.group()
        if char in b"[{":
            depth += 1
        elif char in b"]}":
            depth -= 1
            if depth == 0:
                items.append(raw[item_start : match.start()])
                break
        elif depth == 1:
            items.append(raw[item_start : match.start()])
            item_start = match.end()
    return [item.strip() for item in items if item.strip()]


_SCALAR = re.compile(rb'\s*:\s*("?)([A-Za-z0-9_.-]{1,64})\1\s*[,}]')
_CANDIDATES = 8


def top_level_scalar(raw: bytes, key: str) -> str | None:
    """The value of ``key`` in the object ``raw`` when it is a short plain string or number,
    read without decoding ``raw`` (for naming a document that cannot be decoded)."""
    masked = _masked(raw)
    needle = b'"' + key.encode() + b'"'
    found = 0
    position = raw.find(needle)
    while position >= 0 and found < _CANDIDATES:
        found += 1
        end = position + len(needle)
        if masked[position] == masked[end - 1] == ord('"') and _depth(masked, position) == 1:
            match = _SCALAR.match(raw, end)
            return match.group(2).decode() if match else None
        position = raw.find(needle, end)
    return None


def _depth(masked: bytes, position: int) -> int:
    opened = masked.count(b"{", 0, position) + masked.count(b"[", 0, position)
    return opened - masked.count(b"}", 0, position) - masked.count(b"]", 0, position)
