"""The task object clients see (fetch, list, webhooks): gateway ids and gateway image URLs.

Every key of the contract is always present; upstream ids, channels and hosts never appear.
"""

from __future__ import annotations

import re
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
        "messageContent",
    }
)
_SHOWN_STATUS = {"SUBMITTING": "NOT_START"}


def without_leading_urls(text: str, urls: int) -> str:
    """``text`` without the first ``urls`` URLs it starts with (the upstream's own links to the
    images sent with a task), as migrations/0011's SQL function does."""
    if urls <= 0:
        return text
    return re.sub(rf"^\s*(?:<?https?://\S+?>?(?:\s+|$)){{1,{min(urls, 255)}}}", "", text)


def client_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """Upstream properties without the upstream's own routing details."""
    return {k: v for k, v in properties.items() if k not in _HIDDEN_PROPERTIES}


def _signed_items(
    task: Task, images: ImageSigner, kind: str, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    return [
        {
            "url": images.url_for(task.id, part=f"{kind}-{number}"),
            "thumbnail": images.url_for(task.id, part=f"{kind}-{number}-thumb")
            if item.get("thumbnail")
            else None,
        }
        for number, item in enumerate(items, 1)
    ]


def task_view(task: Task, images: ImageSigner) -> dict[str, Any]:
    """``properties.finalZhPrompt`` is always there (``""`` when there is none), as New API
    answers: web clients render it and break on a missing key. ``imageUrls``, ``videoUrl`` and
    ``videoUrls`` are there when the task has them, each URL the gateway's own."""
    properties = client_properties(task.properties)
    properties["finalZhPrompt"] = properties.get("finalZhPrompt") or ""
    media: dict[str, Any] = {}
    if task.upstream_media.get("images"):
        media["imageUrls"] = _signed_items(task, images, "image", task.upstream_media["images"])
    if task.upstream_media.get("videos"):
        videos = _signed_items(task, images, "video", task.upstream_media["videos"])
        media["videoUrl"], media["videoUrls"] = videos[0]["url"], videos
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
        **media,
    }
