"""Prompt markers and fault draws."""

from __future__ import annotations

import random

from gateway.config import SimulatorFaults
from gateway.simulator.faults import (
    LifecycleFault,
    SubmitFault,
    draw_lifecycle_fault,
    draw_submit_faults,
    forces_lifecycle_fault,
    strip_markers,
)


def test_markers_are_removed_and_collected() -> None:
    cleaned, markers = strip_markers("a cat [[sim:stall]] on a mat [[sim:slow=2.5]] --ar 3:2")
    assert cleaned == "a cat on a mat --ar 3:2"
    assert markers == {"stall": None, "slow": "2.5"}


def test_prompt_without_markers_is_untouched() -> None:
    assert strip_markers("  plain prompt ") == ("  plain prompt ", {})


def test_marker_names_are_case_insensitive() -> None:
    assert strip_markers("[[sim:HTTP_500]]x")[1] == {"http_500": None}


def test_no_faults_draw_nothing_and_use_no_randomness() -> None:
    rng = random.Random(1)
    state = rng.getstate()
    assert draw_submit_faults(SimulatorFaults(), {}, rng).answer is None
    assert draw_lifecycle_fault(SimulatorFaults(), {}, rng) is None
    assert rng.getstate() == state


def test_marker_forces_a_submit_fault() -> None:
    drawn = draw_submit_faults(SimulatorFaults(), {"queue_full": None}, random.Random(1))
    assert drawn.answer is SubmitFault.QUEUE_FULL
    assert drawn.slow_s is None


def test_first_fault_in_declaration_order_wins() -> None:
    markers = {"system_error": None, "http_500": None}
    drawn = draw_submit_faults(SimulatorFaults(), markers, random.Random(1))
    assert drawn.answer is SubmitFault.HTTP_500


def test_slow_adds_a_delay_and_marker_value_overrides() -> None:
    faults = SimulatorFaults(slow_answer_s=3.0)
    assert draw_submit_faults(faults, {"slow": None}, random.Random(1)).slow_s == 3.0
    drawn = draw_submit_faults(faults, {"slow": "0.25", "banned": None}, random.Random(1))
    assert (drawn.answer, drawn.slow_s) == (SubmitFault.BANNED, 0.25)
    assert draw_submit_faults(faults, {"slow": "soon"}, random.Random(1)).slow_s == 3.0


def test_rate_one_always_fires() -> None:
    faults = SimulatorFaults(no_account=1.0, forget=1.0)
    rng = random.Random(3)
    assert draw_submit_faults(faults, {}, rng).answer is SubmitFault.NO_ACCOUNT
    assert draw_lifecycle_fault(faults, {}, rng) is LifecycleFault.FORGET


def test_rates_are_roughly_honoured_and_seeded() -> None:
    faults = SimulatorFaults(stall=0.25)
    draws = [draw_lifecycle_fault(faults, {}, random.Random(7)) for _ in range(3)]
    assert len(set(draws)) == 1
    rng = random.Random(11)
    hits = sum(draw_lifecycle_fault(faults, {}, rng) is not None for _ in range(4000))
    assert 850 < hits < 1150


def test_lifecycle_marker_detection() -> None:
    assert forces_lifecycle_fault({"fail_banned": None})
    assert not forces_lifecycle_fault({"slow": "1"})
