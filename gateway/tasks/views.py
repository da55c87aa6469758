"""The task object clients see (fetch, list, webhooks): gateway ids and gateway image URLs.

Every key of the contract is always present; upstream ids, channels and hosts never appear.
"""

from __future__ import annotations

from typing import Any

from gateway.domain import Task
from gateway.tasks.images import ImageSigner

_HIDDEN_PROPERTIES = frozenset(
    {
        "notifyHook",
        "discordInstanceId",
        "discordChannelId",
        "instanceId",
        "channelId",
        "nonce",
        "progressMessageId",
        "messageId",
        "flags",
    }
)
_SHOWN_STATUS = {"SUBMITTING": "NOT_START"}


def client_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """Upstream properties without the upstream's own routing details."""
    return {k: v for k, v in properties.items() if k not in _HIDDEN_PROPERTIES}


def task_view(task: Task, images: ImageSigner) -> dict[str, Any]:
    """``properties.finalZhPrompt`` is always there (``""`` when there is none), as New API
    answers: web clients render it and break on a missing key."""
    properties = client_properties(task.properties)
    properties["finalZhPrompt"] = properties.get("finalZhPrompt") or ""
    return {
        "id": str(task.id),
        "action": task.action,
        "status": _SHOWN_STATUS.get(task.status, task.status),
        "progress": task.progress,
        "prompt": task.prompt,
        "promptEn": task.prompt_en,
        "description": task.description,
        "state": task.state,
        "submitTime": task.submit_time_ms,
        "startTime": task.start_time_ms,
        "finishTime": task.finish_time_ms,
        "imageUrl": images.url_for(task.id) if task.upstream_image_url else None,
        "failReason": task.fail_reason,
        "buttons": task.buttons,
        "properties": properties,
    }
