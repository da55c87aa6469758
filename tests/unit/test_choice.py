"""Which channels a new task tries, and why there may be none."""

from __future__ import annotations

import random

import pytest

from gateway.domain import Channel
from gateway.errors import ChannelsResting, NoAccount
from gateway.routing.choice import channels_to_try

NOW_MS = 1_800_000_000_000


def _channel(
    channel_id: int, priority: int = 0, modes: frozenset[str] = frozenset({"FAST"})
) -> Channel:
    return Channel(
        id=channel_id,
        name=f"c{channel_id}",
        base_url="http://upstream",
        secret=None,
        weight=1,
        priority=priority,
        modes=modes,
        actions=None,
        bot_types=frozenset({"MID_JOURNEY"}),
        enabled=True,
        callback_token="t",
    )


def _try(channels: list[Channel], resting: dict[int, int]) -> list[Channel]:
    return channels_to_try(
        channels, resting, "mj_imagine", "FAST", "MID_JOURNEY", random.Random(1), NOW_MS
    )


def test_awake_channels_by_priority_and_resting_ones_left_out() -> None:
    channels = [_channel(1, priority=0), _channel(2, priority=5), _channel(3, priority=9)]
    assert [c.id for c in _try(channels, {3: NOW_MS + 10_000})] == [2, 1]


def test_every_serving_channel_resting_is_503_23_until_the_first_is_back() -> None:
    channels = [_channel(1), _channel(2), _channel(3, modes=frozenset({"RELAX"}))]
    with pytest.raises(ChannelsResting) as caught:
        _try(channels, {1: NOW_MS + 29_100, 2: NOW_MS + 12_300})
    assert caught.value.retry_after_s == 13
    assert (caught.value.http_status, caught.value.code) == (503, 23)


def test_no_channel_serving_the_work_is_503_24() -> None:
    with pytest.raises(NoAccount):
        _try([_channel(1, modes=frozenset({"RELAX"}))], {})
    with pytest.raises(NoAccount):
        _try([], {})
