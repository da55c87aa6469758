"""Small helpers for tests that are not fixtures."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

TASK_KEY_ORDER = (
    "id",
    "action",
    "status",
    "progress",
    "prompt",
    "promptEn",
    "description",
    "state",
    "submitTime",
    "startTime",
    "finishTime",
    "imageUrl",
    "failReason",
    "buttons",
    "properties",
)
TASK_KEYS = frozenset(TASK_KEY_ORDER)
"""Every key of a midjourney-proxy-plus task object, always present (null where unknown)."""


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server (TCP or Unix-socket URLs)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))
