"""What a submit asks for (``SubmitOrder``, built from a client's body by
``gateway.api.submit_orders``), how a follow-up's order is fitted to its parent and to its
parent's channel, and what its client is told (``Submitted``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from gateway.billing.prices import (
    BASIS_POINTS,
    REROLL_PRICE_ACTION,
    VIDEO_PRICE_ACTION,
    VIDEO_PRICE_ACTIONS,
)
from gateway.domain import Channel, Task
from gateway.errors import BadRequest
from gateway.routing import flavours

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

    def description_of(self, task_id: int) -> str | None:
        """The description of the task this order made, ``task_id``."""
        if self.description is None:
            return None
        return self.description.replace(TASK_ID_MARK, str(task_id))

    @property
    def sent_prompt(self) -> str | None:
        """The prompt as sent upstream (without speed flags): a task's ``promptEn`` until the
        upstream says otherwise. None for a modal, whose task has its own."""
        sent = self.upstream_body.get("prompt")
        return sent if isinstance(sent, str) and self.kind != "modal" else None


@dataclass(frozen=True, slots=True)
class Submitted:
    """What the client is told: code 1 (or 22 when queued pass-through is on) or 21 (modal)."""

    code: int
    task_id: int
    description: str
    properties: dict[str, Any] = field(default_factory=dict)


def as_its_channel_takes_it(order: SubmitOrder, channel: Channel) -> SubmitOrder:
    """A follow-up as its parent's channel can take it: on a flavour without
    ``/submit/action``, U1-U4, V1-V4 and reroll go as ``/submit/change``; what the channel
    cannot do at all is 400/21, before anything is held."""
    if flavours.offers(channel.flavour, order.kind):
        return order
    pressed = order.custom_id if order.kind == "action" else None
    change = flavours.change_for_button(pressed) if pressed else None
    if change is None:
        raise BadRequest(f"this task's channel ({channel.flavour}) cannot take {order.kind}")
    action, index = change
    body: dict[str, Any] = {"taskId": order.upstream_body["taskId"], "action": action}
    if index is not None:
        body["index"] = index
    return replace(order, kind="change", upstream_path="/mj/submit/change", upstream_body=body)


def as_follow_up_of(order: SubmitOrder, parent: Task) -> SubmitOrder:
    """A follow-up as it goes to its parent's upstream task: in the parent's mode and bot type,
    showing the parent's prompt. An extend keeps to the parent's account. A button's reroll is
    named after its parent's action, as the proxies name it, and a video's reroll is another
    batch of videos, priced as one."""
    upstream_body = {**order.upstream_body, "taskId": parent.upstream_task_id}
    if order.kind == "video":
        upstream_body["accountFilter"] = {"modes": [parent.mode]}
    changes: dict[str, Any] = {
        "upstream_body": upstream_body,
        "mode": parent.mode,
        "bot_type": parent.bot_type,
        "prompt": order.prompt if order.kind == "video" else _inherited_prompt(parent),
        "prompt_urls": parent.prompt_urls,
    }
    if order.kind == "action" and order.price_action == REROLL_PRICE_ACTION:
        changes["action"] = parent.action
        if parent.price_action in VIDEO_PRICE_ACTIONS:
            videos = len(parent.upstream_media.get("videos") or []) or 4
            changes.update(price_action=VIDEO_PRICE_ACTION, quantity_bp=videos * BASIS_POINTS // 4)
    return replace(order, **changes)


def _inherited_prompt(parent: Task) -> str | None:
    """A follow-up shows its parent's prompt; one of a describe or a shorten (whose prompts are
    suggestions) shows the upstream's, the suggestion it picked."""
    return None if parent.action in ("DESCRIBE", "SHORTEN") else parent.prompt
