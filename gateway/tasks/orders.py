"""What a submit asks for (``SubmitOrder``, built from a client's body by
``gateway.api.submit_orders``) and what its client is told (``Submitted``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TASK_ID_MARK = "\x00id\x00"
"""Stands for the new task's id in ``SubmitOrder.description``; no client text can hold it (NUL
is refused in every JSON body)."""


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """A validated submit, ready to price and forward.

    ``upstream_body`` is what goes upstream, except that a follow-up's ``taskId`` is replaced by
    the parent's upstream id. ``parent_id`` names the gateway task a follow-up acts on (for
    ``modal``, the MODAL task itself). ``quantity_bp``: how many times the action's price is
    held, in basis points (an upload's images x 10000, a video batch of n x 2500).
    ``description``: what the task's description says from its submit on; ``TASK_ID_MARK`` in it
    stands for the task's id. ``prompt_urls``: how many image URLs the upstream puts in front of
    the task's prompts (its uploaded images), which the gateway takes off again.
    ``fetched_urls``: (field, URL) of images the upstream is to download, checked like a
    notifyHook. ``account_named``: the client's account filter names one upstream
    account, so a "no usable account" answer is the client's doing, not the channel's.
    """

    kind: str
    upstream_path: str
    upstream_body: dict[str, Any]
    price_action: str
    action: str
    mode: str
    bot_type: str = "MID_JOURNEY"
    prompt: str | None = None
    state: str | None = None
    notify_hook: str | None = None
    parent_id: int | None = None
    custom_id: str | None = None
    quantity_bp: int = 10_000
    description: str | None = None
    prompt_urls: int = 0
    fetched_urls: tuple[tuple[str, str], ...] = ()
    account_named: bool = False


@dataclass(frozen=True, slots=True)
class Submitted:
    """What the client is told: code 1 (or 22 when queued pass-through is on) or 21 (modal)."""

    code: int
    task_id: int
    description: str
    properties: dict[str, Any] = field(default_factory=dict)
