"""When a started task changes: step plans per timing profile and speed mode, in real seconds.

A plan is the list of steps that follow SUBMITTED: the first one turns the task IN_PROGRESS
"0%", each later one sets a progress percentage, and a step with ``progress`` None ends it in
SUCCESS. Delays are real Midjourney seconds (fast mode); the engine divides them by the speed
factor. Pure functions of a ``random.Random``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gateway.simulator.buttons import Profile
from gateway.simulator.protocol import Mode

PROGRESS_STEPS = (15, 31, 46, 62, 78, 93)
TURBO_SPEEDUP = 3.0
RELAX_MAX_WAIT_S = 600.0
STALL_RANGE = (85, 93)


@dataclass(frozen=True, slots=True)
class Step:
    delay_s: float
    progress: int | None


@dataclass(frozen=True, slots=True)
class Plan:
    """``relax_wait_s``: the part of the first delay spent in the relax queue (not timed out)."""

    steps: list[Step]
    relax_wait_s: float


def _base_steps(profile: Profile, rng: random.Random) -> list[Step]:
    if profile is Profile.FULL:
        return [
            Step(rng.uniform(1, 12), 0),
            *(Step(rng.uniform(5, 8), pct) for pct in PROGRESS_STEPS),
            Step(rng.uniform(5, 8), None),
        ]
    if profile is Profile.QUICK:
        total = rng.uniform(2, 8)
        return [Step(total * 0.25, 0), Step(total * 0.75, None)]
    if profile is Profile.TEXT:
        return [Step(rng.uniform(1, 3), 0), Step(rng.uniform(7, 9), None)]
    if profile is Profile.VIDEO:  # about a minute, no progress steps before the end
        return [Step(rng.uniform(1, 3), 0), Step(rng.uniform(50, 70), None)]
    return [Step(rng.uniform(1, 3), 0), Step(rng.uniform(3, 8), None)]


def plan(profile: Profile, mode: Mode, rng: random.Random) -> Plan:
    """The steps of one task. Turbo runs about 3x faster; relax first waits 0-10 minutes."""
    steps = _base_steps(profile, rng)
    if mode is Mode.TURBO:
        steps = [Step(step.delay_s / TURBO_SPEEDUP, step.progress) for step in steps]
    relax_wait_s = 0.0
    if mode is Mode.RELAX and profile is not Profile.SWAP:
        relax_wait_s = rng.uniform(0, RELAX_MAX_WAIT_S)
        steps[0] = Step(steps[0].delay_s + relax_wait_s, steps[0].progress)
    return Plan(steps, relax_wait_s)


def stalled(steps: list[Step], rng: random.Random) -> list[Step]:
    """The same plan cut off at a progress of 85-93% that never moves on."""
    stall_at = rng.randint(*STALL_RANGE)
    kept = [step for step in steps if step.progress is not None and step.progress < stall_at]
    return [*kept, Step(rng.uniform(5, 8), stall_at)]
