"""The memory of ended tasks' answers: its budget, its deadlines, its owners; and the moment a
task's signed URLs change, which bounds every entry."""

from __future__ import annotations

from gateway.tasks.ended import EndedAnswers
from gateway.tasks.images import ImageSigner

BODY = b"x" * 800


def test_an_answer_is_given_to_its_owner_until_its_deadline() -> None:
    kept = EndedAnswers(budget_bytes=100_000)
    kept.put(1, user_id=7, good_until_s=100.0, body=BODY)
    assert kept.get(1, 7, now_s=99.0) == BODY
    assert kept.get(1, 8, now_s=99.0) is None  # someone else's task: not from here
    assert kept.get(1, 7, now_s=100.5) is None  # past its deadline: dropped
    assert len(kept) == 0


def test_the_oldest_answers_go_first_past_the_budget() -> None:
    kept = EndedAnswers(budget_bytes=3 * (len(BODY) + 200))
    for task_id in range(1, 5):
        kept.put(task_id, 7, 100.0, BODY)
    assert len(kept) == 3
    assert kept.get(1, 7, 0.0) is None
    assert [kept.get(n, 7, 0.0) for n in (2, 3, 4)] == [BODY] * 3
    kept.put(4, 7, 100.0, b"y" * 100)  # a new answer of a kept task replaces it
    assert kept.get(4, 7, 0.0) == b"y" * 100
    assert len(kept) == 3
    nothing = EndedAnswers(budget_bytes=0)
    nothing.put(1, 7, 100.0, BODY)
    assert len(nothing) == 0


def test_urls_stay_the_same_until_the_moment_given_and_change_after() -> None:
    signer = ImageSigner(b"k" * 32, "http://gw", ttl_s=86_400)
    now = 1_800_000_123.0
    until = signer.same_urls_until(now)
    assert now <= until < now + 3600
    assert signer.url_for(5, now) == signer.url_for(5, until)
    assert signer.url_for(5, now) != signer.url_for(5, until + 1)
