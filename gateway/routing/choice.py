"""Channel choice, pure: priority tiers first, weighted random order inside a tier; and why
there is none to try.

The order inside a tier is a weighted random permutation (Efraimidis-Spirakis): each channel
draws ``u ** (1 / weight)`` and the largest draw goes first, so a channel leads with probability
``weight / sum(weights)`` and the rest follow in weighted order for failover.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from itertools import groupby

from gateway.domain import Channel
from gateway.errors import BadRequest, ChannelsResting, NoAccount
from gateway.routing import flavours


def failover_order(
    channels: Iterable[Channel],
    price_action: str,
    mode: str,
    bot_type: str,
    rng: random.Random,
    limit: int,
) -> list[Channel]:
    """Up to ``limit`` channels able to run the work, in the order to try them."""
    eligible = sorted(
        (c for c in channels if c.serves(price_action, mode, bot_type)),
        key=lambda c: -c.priority,
    )
    order: list[Channel] = []
    for _, tier in groupby(eligible, key=lambda c: c.priority):
        members = list(tier)
        keys = [rng.random() ** (1.0 / c.weight) for c in members]
        order.extend(c for _, c in sorted(zip(keys, members, strict=True), key=lambda p: -p[0]))
        if len(order) >= limit:
            break
    return order[:limit]


def channels_to_try(
    channels: list[Channel],
    resting_until_ms: Mapping[int, int],
    kind: str,
    price_action: str,
    mode: str,
    bot_type: str,
    rng: random.Random,
    now_ms: int,
) -> list[Channel]:
    """Every channel not resting that can run the work (``kind``: the submit's endpoint, which
    the channel's flavour must offer), in failover order; never empty.

    ``ChannelsResting`` (503/23, ``Retry-After`` the seconds until the first rest ends) when
    every channel that could run it is resting; ``BadRequest`` (400/21) when channels serve the
    action but none of their flavours has its endpoint; ``NoAccount`` (503/24) when none
    serves it at all."""
    offering = [c for c in channels if flavours.offers(c.flavour, kind)]
    if not any(c.serves(price_action, mode, bot_type) for c in offering) and any(
        c.serves(price_action, mode, bot_type) for c in channels
    ):
        raise BadRequest(f"no channel here offers the {kind} endpoint (its upstreams' flavour)")
    channels = offering
    awake = [c for c in channels if c.id not in resting_until_ms]
    ranked = failover_order(awake, price_action, mode, bot_type, rng, len(awake))
    if ranked:
        return ranked
    rests = [
        resting_until_ms[c.id]
        for c in channels
        if c.id in resting_until_ms and c.serves(price_action, mode, bot_type)
    ]
    if rests:
        wait_s = max(1, math.ceil((min(rests) - now_ms) / 1000))
        raise ChannelsResting(
            f"every channel that serves this request is resting after failures; "
            f"the first is back in {wait_s} s",
            retry_after_s=wait_s,
        )
    raise NoAccount("no channel serves this action and mode")
