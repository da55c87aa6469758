"""The contract's table of upstream answers, as verdicts."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import (
    UpstreamBadBody,
    UpstreamDisconnected,
    UpstreamHttpError,
    UpstreamTimedOut,
    UpstreamUnreachable,
)
from gateway.upstream.client import UpstreamAnswer
from gateway.upstream.outcomes import Verdict, classify


def _answer(code: int, result: Any = None) -> UpstreamAnswer:
    return UpstreamAnswer(code=code, description="", result=result)


@pytest.mark.parametrize(
    ("outcome", "verdict"),
    [
        (_answer(1, "1712345678901234"), Verdict.ACCEPTED),
        (_answer(22, 1712345678901234), Verdict.ACCEPTED),
        (_answer(1, None), Verdict.FAILED),
        (_answer(1, ["https://cdn/x.png"]), Verdict.FAILED),  # a list is no task id
        (_answer(21, "1712345678901234"), Verdict.MODAL),
        (_answer(21), Verdict.INVALID),
        (_answer(4), Verdict.INVALID),
        (_answer(24), Verdict.BANNED),
        (_answer(23), Verdict.QUEUE_FULL),
        (_answer(3), Verdict.NO_ACCOUNT),
        (_answer(9), Verdict.FAILED),
        (UpstreamHttpError(401, "x"), Verdict.AUTH_FAILED),
        (UpstreamHttpError(403, "x"), Verdict.AUTH_FAILED),
        (UpstreamHttpError(400, "x"), Verdict.INVALID),
        (UpstreamHttpError(413, "x"), Verdict.INVALID),
        (UpstreamHttpError(422, "x"), Verdict.INVALID),
        (UpstreamHttpError(404, "x"), Verdict.FAILED),
        (UpstreamHttpError(500, "x"), Verdict.FAILED),
        (UpstreamTimedOut("x"), Verdict.TIMEOUT),
        (UpstreamUnreachable("x"), Verdict.FAILED),
        (UpstreamDisconnected("x"), Verdict.FAILED),
        (UpstreamBadBody("x"), Verdict.FAILED),
    ],
)
def test_a_task_submit(outcome: Any, verdict: Verdict) -> None:
    assert classify(outcome) is verdict


@pytest.mark.parametrize(
    ("outcome", "verdict"),
    [
        (_answer(1, ["https://cdn/a.png", "https://cdn/b.png"]), Verdict.ACCEPTED),
        (_answer(1, []), Verdict.FAILED),
        (_answer(1, [1, 2]), Verdict.FAILED),
        (_answer(1, "https://cdn/a.png"), Verdict.FAILED),
        (_answer(4), Verdict.INVALID),
        (_answer(3), Verdict.NO_ACCOUNT),
    ],
)
def test_an_upload(outcome: Any, verdict: Verdict) -> None:
    assert classify(outcome, urls=True) is verdict
