"""What an upstream's answer means for a submit: the contract's table of upstream codes, as code.

Pure: no I/O. ``classify`` turns an answer or an ``UpstreamError`` into a ``Verdict``; the submit
path acts on the verdict alone (and ``gateway.routing.health`` on what it says of the channel).
"""

from __future__ import annotations

from enum import Enum

from gateway.errors import UpstreamError, UpstreamHttpError, UpstreamTimedOut
from gateway.upstream.client import UpstreamAnswer


class Verdict(Enum):
    """The gateway's reading of one upstream attempt."""

    ACCEPTED = "accepted"  # 1 or 22: a task exists upstream, the charge is kept
    MODAL = "modal"  # 21 with a task id: the client must confirm through /submit/modal
    BANNED = "banned"  # 24: the prompt is refused; 400/21, no retry
    INVALID = "invalid"  # 4 (or 21 without a task, or HTTP 400): 400/21, the request's doing
    QUEUE_FULL = "queue_full"  # 23: try the next channel
    NO_ACCOUNT = "no_account"  # 3: cool the channel down, try the next
    AUTH_FAILED = "auth_failed"  # HTTP 401/403: wrong channel secret; cool down, try the next
    TIMEOUT = "timeout"  # sent without an answer in time: a failure towards a cooldown; next
    FAILED = "failed"  # 9, 5xx, garbage, dropped connection: a failure towards a cooldown; next

    @property
    def tries_next_channel(self) -> bool:
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {Verdict.QUEUE_FULL, Verdict.NO_ACCOUNT, Verdict.AUTH_FAILED, Verdict.TIMEOUT, Verdict.FAILED}
)


def classify(outcome: UpstreamAnswer | UpstreamError, *, urls: bool = False) -> Verdict:
    """``urls``: the call is an upload, whose accepted answer carries a list of image URLs
    where a task id would be. HTTP 400, 413 and 422 are the upstream refusing the request as
    malformed: the request's doing (INVALID), not the channel's."""
    if isinstance(outcome, UpstreamTimedOut):
        return Verdict.TIMEOUT
    if isinstance(outcome, UpstreamHttpError) and outcome.status in (401, 403):
        return Verdict.AUTH_FAILED
    if isinstance(outcome, UpstreamHttpError) and outcome.status in (400, 413, 422):
        return Verdict.INVALID
    if isinstance(outcome, UpstreamError):
        return Verdict.FAILED
    if urls:
        result = outcome.result
        has_task = (
            isinstance(result, list) and bool(result) and all(isinstance(u, str) for u in result)
        )
    else:
        has_task = isinstance(outcome.result, str | int) and str(outcome.result) != ""
    match outcome.code:
        case 1 | 22 if has_task:
            return Verdict.ACCEPTED
        case 21 if has_task:
            return Verdict.MODAL
        case 21 | 4:
            return Verdict.INVALID
        case 24:
            return Verdict.BANNED
        case 23:
            return Verdict.QUEUE_FULL
        case 3:
            return Verdict.NO_ACCOUNT
        case _:
            return Verdict.FAILED
