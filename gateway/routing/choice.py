"""Channel choice, pure: priority tiers first, weighted random order inside a tier.

The order inside a tier is a weighted random permutation (Efraimidis-Spirakis): each channel
draws ``u ** (1 / weight)`` and the largest draw goes first, so a channel leads with probability
``weight / sum(weights)`` and the rest follow in weighted order for failover.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from itertools import groupby

from gateway.domain import Channel


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
