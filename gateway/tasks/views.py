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


def shown_answer_properties(properties: dict[str, Any], prompt_urls: int) -> dict[str, Any]:
    """An answer's properties, its ``finalPrompt`` without the upstream's links to the images
    sent with the task."""
    final = properties.get("finalPrompt")
    if not isinstance(final, str) or not prompt_urls:
        return properties
    return {**properties, "finalPrompt": without_leading_urls(final, prompt_urls)}


def client_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """Upstream properties without the upstream's own routing details."""
    return {k: v for k, v in properties.items() if k not in _HIDDEN_PROPERTIES}


def media_url(task: Task, images: ImageSigner, part: str, *, thumb: bool = False) -> str:
    """Where a client gets a part of a task's result (``image``, ``image-<n>``, ``video-<n>``)
    or its thumbnail: the gateway's signed URL, or, when the part is stored and
    ``GATEWAY_MEDIA__PUBLIC_BASE_URL`` says so, a CDN's or a presigned object-store URL."""
    key = task.stored_media.get(f"{part}-thumb" if thumb else part)
    if key is not None and images.media_link is not None:
        return images.media_link(key)
    url = images.url_for(task.id, part=None if part == "image" else part)
    return f"{url}&size=thumb" if thumb else url


def _numbered(task: Task, kind: str) -> int:
    """How many single images (``image``) or videos (``video``) the result has."""
    offered = len(task.upstream_media.get(f"{kind}s") or [])
    stored = sum(
        1
        for part in task.stored_media
        if part.startswith(f"{kind}-") and not part.endswith("-thumb")
    )
    return max(offered, stored)


def task_view(task: Task, images: ImageSigner) -> dict[str, Any]:
    """``properties.finalZhPrompt`` is always there (``""`` when there is none), as New API
    answers: web clients render it and break on a missing key. ``imageUrls`` (the single images
    of a grid, the upstream's or cut here), ``videoUrl`` and ``videoUrls`` are there when the
    task has them, each URL the gateway's own."""
    properties = client_properties(task.properties)
    properties["finalZhPrompt"] = properties.get("finalZhPrompt") or ""
    media: dict[str, Any] = {}
    if count := _numbered(task, "image"):
        media["imageUrls"] = [
            {
                "url": media_url(task, images, f"image-{n}"),
                "thumbnail": media_url(task, images, f"image-{n}", thumb=True),
            }
            for n in range(1, count + 1)
        ]
    if count := _numbered(task, "video"):
        offered = task.upstream_media.get("videos") or []
        media["videoUrls"] = [
            {
                "url": media_url(task, images, f"video-{n}"),
                "thumbnail": media_url(task, images, f"video-{n}", thumb=True)
                if f"video-{n}-thumb" in task.stored_media
                or (n <= len(offered) and offered[n - 1].get("thumbnail"))
                else None,
            }
            for n in range(1, count + 1)
        ]
        media["videoUrl"] = media["videoUrls"][0]["url"]
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
        "imageUrl": media_url(task, images, "image") if task.upstream_image_url else None,
        "failReason": task.fail_reason,
        "buttons": task.buttons,
        "properties": properties,
        **media,
    }
