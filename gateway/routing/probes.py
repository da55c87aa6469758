"""Probes of resting channels: the way a cooldown ends early, and the state of every channel.

The leader (one replica at a time, ``gateway.tasks.leader``) runs ``run_once`` every
``tick_s`` while it leads. A channel that has been resting for ``interval_s`` is probed
(``UpstreamClient.probe``), then again every ``interval_s`` while it rests:

- a good answer ends a cooldown the probe can vouch for, one started by the channel being
  unreachable (``CoolReason.UNREACHABLE``) or refusing the secret, for every replica (each
  sees it within a second), and traffic returns;
- a failed one rests it again, a full cooldown from now and never less than until after the
  next probe, so live traffic is never the probe of a channel that still fails; if the leader
  goes, cooldowns lapse and the next submit tries the channel;
- a cooldown the probe cannot vouch for is not ended by a good answer: "no account" (code 3;
  a probe cannot show accounts) and ``CoolReason.FAILURES`` (the channel answered work with a
  failure, or did not answer it in time, and a list of no tasks says nothing of that). It runs
  out, and the next new task tries the channel (a 3 costs the client nothing, the submit moves
  to the next channel). A failed probe extends these like any other.

Disabled channels are never probed: the operator's switch (``channels.enabled``) is theirs
alone, and nothing here writes it.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from gateway import metrics
from gateway.domain import Channel
from gateway.routing.cooldowns import Cooldown, Cooldowns, CoolReason
from gateway.routing.directory import ChannelDirectory
from gateway.upstream.client import ProbeResult, UpstreamClient

log = structlog.get_logger(__name__)

STATES = ("up", "cooling", "disabled")
_ENDED_BY_A_GOOD_PROBE = frozenset({CoolReason.UNREACHABLE, CoolReason.AUTH_FAILED})
_TICK_S = 1.0  # the longest a newly resting channel waits to be noticed


class ChannelProber:
    def __init__(
        self,
        channels: ChannelDirectory,
        cooldowns: Cooldowns,
        upstream: UpstreamClient,
        *,
        interval_s: float,
        timeout_s: float,
    ) -> None:
        self._channels = channels
        self._cooldowns = cooldowns
        self._upstream = upstream
        self._interval_s = interval_s
        self._tick_s = min(_TICK_S, interval_s)
        # A failed probe's channel rests at least until the next probe has had its time.
        self._rest_at_least_s = interval_s + self._tick_s + timeout_s
        self._due_at: dict[int, float] = {}  # next probe (monotonic) of each resting channel

    @property
    def tick_s(self) -> float:
        """How often ``run_once`` should run: every ``min(interval_s, 1 s)``."""
        return self._tick_s

    async def run_once(self) -> dict[int, ProbeResult]:
        """Probe the resting channels that are due, act on the answers, export every channel's
        state; the probes made, by channel id."""
        channels = await self._channels.channels()
        cooling = await self._cooldowns.cooling()
        now = time.monotonic()
        self._due_at = {cid: due for cid, due in self._due_at.items() if cid in cooling}
        due = []
        for channel in channels:
            resting = channel.enabled and channel.id in cooling
            if resting and now >= self._due_at.setdefault(channel.id, now + self._interval_s):
                due.append(channel)
        results = await asyncio.gather(*(self._probe(c, cooling[c.id]) for c in due))
        self._export(channels, await self._cooldowns.cooling())
        return {channel.id: result for channel, result in zip(due, results, strict=True)}

    async def _probe(self, channel: Channel, cooldown: Cooldown) -> ProbeResult:
        result = await self._upstream.probe(channel)
        self._due_at[channel.id] = time.monotonic() + self._interval_s
        metrics.CHANNEL_PROBES.labels(channel.name, "ok" if result.ok else "failed").inc()
        if not result.ok:
            await self._cooldowns.cool(channel.id, cooldown.reason, self._rest_at_least_s)
            log.warning("channel_probe_failed", channel=channel.name, detail=result.detail)
        elif cooldown.reason in _ENDED_BY_A_GOOD_PROBE:
            await self._cooldowns.end(channel.id)
            log.info("channel_back", channel=channel.name, seconds=round(result.seconds, 3))
        return result

    @staticmethod
    def _export(channels: list[Channel], cooling: dict[int, Cooldown]) -> None:
        for channel in channels:
            if not channel.enabled:
                now = "disabled"
            else:
                now = "cooling" if channel.id in cooling else "up"
            for state in STATES:
                metrics.CHANNEL_STATE.labels(channel.name, state).set(int(state == now))
