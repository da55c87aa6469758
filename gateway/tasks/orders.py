"""What a submit asks for (``SubmitOrder``, built from a client's body by
``gateway.api.submit_orders``) and what its client is told (``Submitted``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """A validated submit, ready to price and forward.

    ``upstream_body`` is what goes upstream, except that a follow-up's ``taskId`` is replaced by
    the parent's upstream id. ``parent_id`` names the gateway task a follow-up acts on (for
    ``modal``, the MODAL task itself). ``quantity``: how many times the action's price is held
    (an upload's images). ``account_named``: the client's account filter names one upstream
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
    quantity: int = 1
    account_named: bool = False


@dataclass(frozen=True, slots=True)
class Submitted:
    """What the client is told: code 1 (or 22 when queued pass-through is on) or 21 (modal)."""

    code: int
    task_id: int
    description: str
    properties: dict[str, Any] = field(default_factory=dict)
