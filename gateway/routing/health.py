"""What an upstream call says of its channel's health, decided in one place.

The submit path and the poller report each call here; this module turns the report into failure
streaks and rests (``gateway.routing.cooldowns``), the cooldown metric and the log line.

- A failure (a submit that failed or timed out, a poll with no answer) counts towards a rest,
  with its kind (``failure_kind``).
- "No account" (3) to new work and a refused secret (401/403) rest the channel at once.
- Any other answer shows the channel alive and ends its streak, but what the request itself
  may have caused says nothing either way: a follow-up's 3 (the upstream may have lost its
  parent) and a 3 to a request that named an account.
"""

from __future__ import annotations

import structlog

from gateway import metrics
from gateway.domain import Channel
from gateway.errors import UpstreamDisconnected, UpstreamError, UpstreamUnreachable
from gateway.routing.cooldowns import Cooldowns, CoolReason
from gateway.upstream.client import UpstreamAnswer
from gateway.upstream.outcomes import Verdict

log = structlog.get_logger(__name__)


def failure_kind(outcome: UpstreamAnswer | UpstreamError) -> CoolReason:
    """The kind of a failed call: ``UNREACHABLE`` when no connection was made or it dropped
    before an answer, which a good probe disproves; ``FAILURES`` when the channel answered with
    a failure, or did not answer in time once the request was sent, which a probe cannot see."""
    if isinstance(outcome, UpstreamUnreachable | UpstreamDisconnected):
        return CoolReason.UNREACHABLE
    return CoolReason.FAILURES


async def note_submit(
    cooldowns: Cooldowns,
    channel: Channel,
    verdict: Verdict,
    outcome: UpstreamAnswer | UpstreamError,
    *,
    no_account_is_the_requests: bool,
) -> None:
    """One submit attempt's verdict. ``no_account_is_the_requests``: a 3 may be the request's
    doing (a follow-up, a named account)."""
    reason: CoolReason | None = None
    if verdict in (Verdict.FAILED, Verdict.TIMEOUT):
        reason = await cooldowns.failed(channel.id, failure_kind(outcome))
    elif verdict is Verdict.AUTH_FAILED:
        reason = CoolReason.AUTH_FAILED
        await cooldowns.cool(channel.id, reason)
    elif verdict is Verdict.NO_ACCOUNT:
        if not no_account_is_the_requests:
            reason = CoolReason.NO_ACCOUNT
            await cooldowns.cool(channel.id, reason)
    else:
        await cooldowns.succeeded(channel.id)
    _cooled(channel, reason)


async def note_poll(cooldowns: Cooldowns, channel: Channel, error: UpstreamError | None) -> None:
    """One poll of the channel: answered (``error`` None) or not."""
    if error is None:
        await cooldowns.succeeded(channel.id)
        return
    _cooled(channel, await cooldowns.failed(channel.id, failure_kind(error)))


def _cooled(channel: Channel, reason: CoolReason | None) -> None:
    if reason is not None:
        metrics.CHANNEL_COOLDOWNS.labels(channel.name, reason.value).inc()
        log.warning("channel_cooled_down", channel=channel.name, reason=reason.value)
