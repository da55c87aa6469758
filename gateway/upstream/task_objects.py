"""Reading an upstream's task object into the gateway's columns. Pure.

Upstreams differ in small ways (missing keys, numbers as strings, null lists); anything that
does not look like a task yields None rather than a half-read update.
"""

from __future__ import annotations

from typing import Any

from gateway.domain import UpstreamTaskUpdate

UPSTREAM_STATUSES = frozenset(
    {"NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS", "FAILURE", "SUCCESS", "CANCEL"}
)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _millis(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _buttons(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [
        {
            "customId": b.get("customId"),
            "emoji": b.get("emoji"),
            "label": b.get("label"),
            "type": b.get("type"),
            "style": b.get("style"),
        }
        for b in value
        if isinstance(b, dict) and isinstance(b.get("customId"), str)
    ]


def parse_task_object(obj: dict[str, Any]) -> UpstreamTaskUpdate | None:
    status = obj.get("status")
    upstream_id = obj.get("id")
    if not isinstance(status, str) or status not in UPSTREAM_STATUSES:
        return None
    if not isinstance(upstream_id, str | int) or upstream_id == "":
        return None
    properties = obj.get("properties")
    progress = obj.get("progress")
    return UpstreamTaskUpdate(
        upstream_task_id=str(upstream_id),
        action=_text(obj.get("action")),
        status=status,
        progress=progress if isinstance(progress, str) else "",
        prompt=_text(obj.get("prompt")),
        prompt_en=_text(obj.get("promptEn")),
        description=_text(obj.get("description")),
        start_time_ms=_millis(obj.get("startTime")),
        finish_time_ms=_millis(obj.get("finishTime")),
        image_url=_text(obj.get("imageUrl")),
        fail_reason=_text(obj.get("failReason")),
        buttons=_buttons(obj.get("buttons")),
        properties=properties if isinstance(properties, dict) else {},
    )
