"""Which channels a new task tries, in which order, and why there may be none."""

from __future__ import annotations

import dataclasses
import random

import pytest

from gateway.domain import Channel
from gateway.errors import BadRequest, ChannelsResting, NoAccount
from gateway.routing import flavours
from gateway.routing.choice import channels_to_try, failover_order

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


def _try(channels: list[Channel], resting: dict[int, int], kind: str = "imagine") -> list[Channel]:
    return channels_to_try(
        channels, resting, kind, "mj_imagine", "FAST", "MID_JOURNEY", random.Random(1), NOW_MS
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


def test_inside_a_tier_a_channel_leads_by_its_share_of_the_weights() -> None:
    channels = [
        dataclasses.replace(_channel(n), weight=weight) for n, weight in ((1, 1), (2, 3), (3, 6))
    ]
    rng = random.Random(7)
    leads = {1: 0, 2: 0, 3: 0}
    for _ in range(20_000):
        order = failover_order(channels, "mj_imagine", "FAST", "MID_JOURNEY", rng, 3)
        assert sorted(c.id for c in order) == [1, 2, 3]  # the rest follow, for failover
        leads[order[0].id] += 1
    for channel_id, share in ((1, 0.1), (2, 0.3), (3, 0.6)):
        assert abs(leads[channel_id] / 20_000 - share) < 0.015, leads


def test_channels_that_cannot_run_the_work_are_left_out() -> None:
    relax_only = _channel(1, modes=frozenset({"RELAX"}))
    disabled = dataclasses.replace(_channel(2), enabled=False)
    no_upscale = dataclasses.replace(_channel(3), actions=frozenset({"mj_upscale"}))
    niji = dataclasses.replace(_channel(4), bot_types=frozenset({"NIJI_JOURNEY"}))
    ok = _channel(5)
    order = failover_order(
        [relax_only, disabled, no_upscale, niji, ok], "mj_imagine", "FAST", "MID_JOURNEY",
        random.Random(1), 5,
    )  # fmt: skip
    assert [c.id for c in order] == [5]


def test_a_channel_whose_flavour_lacks_the_endpoint_is_left_out() -> None:
    open_source = dataclasses.replace(_channel(1, priority=9), flavour="open-source")
    plus = _channel(2)
    assert [c.id for c in _try([open_source, plus], {})] == [1, 2]
    assert [c.id for c in _try([open_source, plus], {}, kind="shorten")] == [2]
    with pytest.raises(BadRequest, match="shorten"):
        _try([open_source], {}, kind="shorten")
    trueai = dataclasses.replace(_channel(3), flavour="trueai")
    assert [c.id for c in _try([trueai], {}, kind="upload")] == [3]
    with pytest.raises(BadRequest, match="change"):
        _try([trueai], {}, kind="change")


@pytest.mark.parametrize(
    ("custom_id", "change"),
    [
        ("MJ::JOB::upsample::1::5f0c", ("UPSCALE", 1)),
        ("MJ::JOB::upsample::4::5f0c", ("UPSCALE", 4)),
        ("MJ::JOB::variation::2::5f0c", ("VARIATION", 2)),
        ("MJ::JOB::reroll::0::5f0c::SOLO", ("REROLL", None)),
        ("MJ::JOB::upsample_v6_2x_subtle::1::5f0c::SOLO", None),
        ("MJ::JOB::low_variation::1::5f0c::SOLO", None),
        ("MJ::Outpaint::50::1::5f0c::SOLO", None),
        ("MJ::JOB::upsample::0::5f0c", None),
    ],
)
def test_the_buttons_an_open_source_upstream_takes_as_a_change(
    custom_id: str, change: tuple[str, int | None] | None
) -> None:
    assert flavours.change_for_button(custom_id) == change
