"""The gateway's plain data: what repositories return and services pass around.

Frozen dataclasses with no behaviour beyond derived properties; every layer may import them.
Money is integer quota units, times are epoch milliseconds unless a name says otherwise.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Mode = Literal["FAST", "RELAX", "TURBO"]
MODES: tuple[Mode, ...] = ("FAST", "RELAX", "TURBO")

_TASK_ID = re.compile(r"[0-9]{1,16}")


def is_task_id(value: str) -> bool:
    """Whether a client's string can be a gateway task id: 1 to 16 ASCII digits."""
    return _TASK_ID.fullmatch(value) is not None


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an enabled user through one of their keys.

    Rate limits (None: none of that kind): ``requests_per_minute`` and ``max_open_tasks`` are
    the key's own, the ``user_`` ones its user's across all of their keys.
    """

    user_id: int
    key_id: int
    group_ratio_bp: int
    webhook_secret: str
    expires_at_ms: int | None
    allowed_actions: frozenset[str] | None
    allowed_networks: tuple[IpNetwork, ...] | None
    requests_per_minute: int | None = None
    max_open_tasks: int | None = None
    user_requests_per_minute: int | None = None
    user_max_open_tasks: int | None = None


@dataclass(frozen=True, slots=True)
class KeySettings:
    """What an API key may do, fixed when it is issued; each one left out is no limit of its kind.

    ``quota_units``: what the key may spend (None: only its user's balance limits it);
    ``allowed_actions``: priced action names; ``allowed_cidrs``: client networks."""

    name: str = ""
    quota_units: int | None = None
    expires_at: datetime | None = None
    allowed_actions: list[str] | None = None
    allowed_cidrs: list[str] | None = None
    requests_per_minute: int | None = None
    max_open_tasks: int | None = None


@dataclass(frozen=True, slots=True)
class Channel:
    """An upstream midjourney-proxy instance and what it serves."""

    id: int
    name: str
    base_url: str
    secret: str | None
    weight: int
    priority: int
    modes: frozenset[str]
    actions: frozenset[str] | None
    bot_types: frozenset[str]
    enabled: bool
    callback_token: str  # names the channel in the callback URLs it is given; a secret
    max_in_flight: int | None = None  # tasks in flight it may have at once; None: no cap
    flavour: str = "plus"  # which midjourney-proxy it is (gateway.routing.flavours)

    def serves(self, price_action: str, mode: str, bot_type: str) -> bool:
        return (
            self.enabled
            and mode in self.modes
            and bot_type in self.bot_types
            and (self.actions is None or price_action in self.actions)
        )


@dataclass(frozen=True, slots=True)
class Task:
    """A task as the gateway keeps it (upstream ids and channel never shown to clients)."""

    id: int
    user_id: int
    api_key_id: int
    parent_id: int | None
    channel_id: int | None
    upstream_task_id: str | None
    action: str
    price_action: str
    mode: str
    bot_type: str
    price_units: int
    status: str
    progress: str
    prompt: str | None
    prompt_en: str | None
    description: str | None
    state: str | None
    notify_hook: str | None
    submit_time_ms: int
    start_time_ms: int | None
    finish_time_ms: int | None
    upstream_image_url: str | None
    fail_reason: str | None
    buttons: list[dict[str, Any]] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    prompt_urls: int = 0  # image URLs the upstream puts in front of the prompts it shows
    upstream_media: dict[str, Any] = field(default_factory=dict)  # see UpstreamTaskUpdate.media
    stored_media: dict[str, str] = field(default_factory=dict)  # part -> key in the media store
    media_pending: bool = False  # a copy into the media store is still to be made


@dataclass(frozen=True, slots=True)
class UpstreamTaskUpdate:
    """What one upstream task object says, in the gateway's columns."""

    upstream_task_id: str
    action: str | None
    status: str
    progress: str
    prompt: str | None
    prompt_en: str | None
    description: str | None
    start_time_ms: int | None
    finish_time_ms: int | None
    image_url: str | None
    fail_reason: str | None
    buttons: list[dict[str, Any]]
    properties: dict[str, Any]
    media: dict[str, Any] = field(default_factory=dict)
    """``images``: the single images of a grid, ``videos``: the videos, each a list of
    ``{url, thumbnail}`` (the upstream's URLs); absent when the upstream gives none."""
