"""``gateway_poll_lag_seconds``: how long each task the poller asks about went unasked, across
rounds that ask about all open tasks, some of them, or none; and how the bench reads it."""

from __future__ import annotations

import math

from gateway.bench.polling import quantile
from gateway.tasks.poller import PollMemory

SUBMIT_S = 1_000_000.0  # when the tasks below were submitted (their ids say so)


def _id(n: int) -> int:
    return int(SUBMIT_S * 1000) * 1000 + n


def test_a_task_is_timed_from_its_submit_then_from_each_ask() -> None:
    asked = PollMemory(max_tasks_per_round=100, longest_life_s=1800)
    running, waiting = _id(1), _id(2)

    assert asked.ask([running, waiting], True, SUBMIT_S + 3) == [3.0, 3.0]
    assert asked.ask([running], False, SUBMIT_S + 5) == [2.0]  # a round of running tasks only
    assert asked.ask([], False, SUBMIT_S + 7) == []  # a round with nothing to ask
    assert asked.ask([running], False, SUBMIT_S + 9) == [4.0]
    # The waiting task was left out of three rounds: its lag runs from its last ask.
    assert asked.ask([running, waiting], True, SUBMIT_S + 11) == [2.0, 8.0]


def test_a_round_of_every_open_task_forgets_the_ended_ones() -> None:
    asked = PollMemory(max_tasks_per_round=100, longest_life_s=1800)
    asked.ask([_id(n) for n in range(10)], True, SUBMIT_S + 1)
    asked.ask([_id(n) for n in range(5)], False, SUBMIT_S + 2)
    assert len(asked) == 10
    asked.ask([_id(n) for n in range(3)], True, SUBMIT_S + 3)
    assert len(asked) == 3


def test_with_more_open_than_a_round_takes_only_what_outlived_every_task_is_forgotten() -> None:
    asked = PollMemory(max_tasks_per_round=2, longest_life_s=60)
    asked.ask([_id(1), _id(2)], False, SUBMIT_S + 1)
    asked.ask([_id(3), _id(4)], False, SUBMIT_S + 100)  # 4 kept: at most 2 per round x 2
    assert len(asked) == 4
    asked.ask([_id(5)], False, SUBMIT_S + 101)  # 5 > 4: the two asked 100 s ago go
    assert len(asked) == 3
    assert asked.ask([_id(3)], False, SUBMIT_S + 102) == [2.0]


def test_the_bench_reads_quantiles_as_prometheus_does() -> None:
    # 10 observations up to 1 s, 10 more up to 2 s, none above: cumulative buckets.
    buckets = {1.0: 10.0, 2.0: 20.0, 5.0: 20.0, float("inf"): 20.0}
    assert quantile(0.5, buckets) == 1.0
    assert quantile(0.75, buckets) == 1.5  # halfway through the (1, 2] bucket
    assert quantile(0.95, buckets) == 1.9
    assert quantile(0.99, {1.0: 0.0, float("inf"): 5.0}) == 1.0  # in +Inf: the highest bound
    assert math.isnan(quantile(0.5, {1.0: 0.0, float("inf"): 0.0}))  # nothing observed
