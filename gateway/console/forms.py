"""Reading the console's HTML forms: every field a string, checked here and named in the error
(400, shown on the page), before it reaches the services that check it again."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request

from gateway.errors import BadRequest

MAX_FIELD = 2000
_SEPARATORS = re.compile(r"[\s,]+")


class Form:
    def __init__(self, fields: Any) -> None:
        self._fields = fields

    def text(self, name: str, label: str, *, required: bool = False, max_length: int = 500) -> str:
        value = self._fields.get(name)
        value = value.strip() if isinstance(value, str) else ""
        if "\x00" in value or len(value) > max_length:
            raise BadRequest(f"{label}: at most {max_length} characters, and no NUL")
        if required and not value:
            raise BadRequest(f"{label} is required")
        return value

    def secret(self, name: str) -> str:
        """A password as typed (not stripped)."""
        value = self._fields.get(name)
        return value if isinstance(value, str) and len(value) <= MAX_FIELD else ""

    def number(self, name: str, label: str, *, low: int = 0, high: int = 2**63 - 1) -> int | None:
        """A whole number in [low, high]; None when left empty."""
        raw = self.text(name, label).replace("_", "").replace(",", "")
        if not raw:
            return None
        if not re.fullmatch(r"-?[0-9]{1,19}", raw) or not low <= int(raw) <= high:
            raise BadRequest(f"{label} is a whole number from {low:,} to {high:,}")
        return int(raw)

    def required_number(self, name: str, label: str, *, low: int = 0, high: int = 2**63 - 1) -> int:
        value = self.number(name, label, low=low, high=high)
        if value is None:
            raise BadRequest(f"{label} is required")
        return value

    def checked(self, name: str) -> bool:
        return self._fields.get(name) in ("on", "true", "1")

    def picked(self, name: str) -> list[str]:
        """Every value of a group of checkboxes (or a multiple select)."""
        return [v for v in self._fields.getall(name, []) if isinstance(v, str)][:100]

    def words(self, name: str, label: str) -> list[str]:
        """Values typed one per line or separated by commas."""
        return [w for w in _SEPARATORS.split(self.text(name, label, max_length=MAX_FIELD)) if w]


URLENCODED = "application/x-www-form-urlencoded"


def is_urlencoded(request: Request[Any, Any, Any]) -> bool:
    """Whether the body is a plain HTML form, the only kind the console reads (its forms send
    no files, and a multipart body would be spooled to disk before anything is checked)."""
    return request.content_type[0] == URLENCODED


def day(name: str, value: str | None, *, end: bool = False) -> datetime | None:
    """The start of a day picked in a date field (YYYY-MM-DD, UTC), or of the day after it for
    the ``end`` of a range; None when left empty."""
    if not value:
        return None
    try:
        start = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise BadRequest(f"{name} is a day: YYYY-MM-DD") from None
    return start + timedelta(days=1) if end else start


async def read_form(request: Request[Any, Any, Any]) -> Form:
    if not is_urlencoded(request):
        raise BadRequest(f"the console's forms are sent as {URLENCODED}")
    return Form(await request.form())
