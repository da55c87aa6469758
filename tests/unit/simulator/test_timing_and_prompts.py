"""Step plans per profile and mode, and the prompt helpers."""

from __future__ import annotations

import random

from gateway.simulator.buttons import Profile
from gateway.simulator.prompts import (
    aspect_ratio,
    describe_suggestions,
    numbered,
    shorten_suggestions,
    slug,
    suggestion_at,
)
from gateway.simulator.protocol import Mode
from gateway.simulator.timing import PROGRESS_STEPS, plan, stalled


def _total(steps: list[float]) -> float:
    return sum(steps)


def test_full_plan_walks_the_progress_steps_in_30_to_60_seconds() -> None:
    for seed in range(50):
        steps = plan(Profile.FULL, Mode.FAST, random.Random(seed)).steps
        assert [s.progress for s in steps] == [0, *PROGRESS_STEPS, None]
        assert 1 <= steps[0].delay_s <= 12
        assert all(5 <= s.delay_s <= 8 for s in steps[1:])
        assert 30 <= _total([s.delay_s for s in steps[1:]]) <= 60


def test_upscale_is_done_in_two_to_eight_seconds_without_steps() -> None:
    for seed in range(50):
        steps = plan(Profile.QUICK, Mode.FAST, random.Random(seed)).steps
        assert [s.progress for s in steps] == [0, None]
        assert 2 <= _total([s.delay_s for s in steps]) <= 8


def test_turbo_is_three_times_faster_and_relax_waits_first() -> None:
    fast = plan(Profile.FULL, Mode.FAST, random.Random(5))
    turbo = plan(Profile.FULL, Mode.TURBO, random.Random(5))
    relax = plan(Profile.FULL, Mode.RELAX, random.Random(5))
    assert turbo.steps[3].delay_s * 3 == fast.steps[3].delay_s
    assert relax.relax_wait_s > 0
    assert relax.steps[0].delay_s == fast.steps[0].delay_s + relax.relax_wait_s
    assert fast.relax_wait_s == turbo.relax_wait_s == 0


def test_stalled_plan_stops_between_85_and_93_percent() -> None:
    for seed in range(30):
        rng = random.Random(seed)
        steps = stalled(plan(Profile.FULL, Mode.FAST, rng).steps, rng)
        last = steps[-1].progress
        assert last is not None
        assert 85 <= last <= 93
        assert all(s.progress is not None for s in steps)


def test_numbered_suggestions_round_trip() -> None:
    text = numbered(describe_suggestions(random.Random(1)))
    parts = text.split("\n\n")
    assert len(parts) == 4
    assert parts[0].startswith("1️⃣ ")
    assert suggestion_at(text, 2) == parts[1].removeprefix("2️⃣ ")
    assert suggestion_at(text, 5) is None
    assert suggestion_at(None, 1) is None


def test_shorten_keeps_parameters_and_shrinks() -> None:
    prompt = "a very long prompt about a lighthouse on a cliff at dusk --ar 16:9"
    shortened = shorten_suggestions(prompt, random.Random(2))
    assert len(shortened) == 5
    assert all(s.endswith(" --ar 16:9") for s in shortened)
    assert len(shortened[-1]) < len(shortened[0])


def test_aspect_ratio_and_slug() -> None:
    assert aspect_ratio("cat --ar 16:9") == 16 / 9
    assert aspect_ratio("cat") == 1.0
    assert aspect_ratio("cat --ar 0:1") == 1.0
    assert slug("A Red Fox, at dawn! --ar 3:2") == "simuser_a_red_fox_at_dawn"
    assert slug(None) == "simuser"
