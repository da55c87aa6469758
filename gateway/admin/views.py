"""The one shape of every operator view, for the admin API and ``gateway admin``: JSON values
with camelCase keys and ISO-8601 times; and the paging and times an operator types."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.domain import Task
from gateway.errors import BadRequest

MAX_PAGE = 500  # rows in one page of a listing


def instant(name: str, value: str | None) -> datetime | None:
    """An ISO-8601 day or time an operator typed (UTC unless it says otherwise)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} is an ISO-8601 time, e.g. 2026-12-03T10:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def epoch_ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit is 1 to {MAX_PAGE}")
    return limit


def as_json(value: Any) -> Any:
    """An operator's view (dataclasses, lists, dicts of them) as JSON values, the dataclasses'
    fields as camelCase keys (dict keys are data and stay as they are) and times in ISO-8601:
    what the admin API answers and ``gateway admin`` prints."""
    if is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): as_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [as_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def task_record(task: Task) -> dict[str, Any]:
    """A task as the operator sees it: every column but the client's webhook URL (which may
    carry the client's own credentials)."""
    record: dict[str, Any] = as_json(task)
    record.pop("notifyHook")
    return record
