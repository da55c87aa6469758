"""Task sync: bring every open task up to date from its channel.

The leader (``gateway.tasks.leader``) starts a round every poll interval. Each round reads the
open tasks, asks each channel for them with list-by-condition in batches (channels in parallel),
and writes what changed: running and young tasks every round, older ones still queued upstream
(or awaiting a modal) every ``waiting_every`` rounds. A task that ends in FAILURE or CANCEL is
refunded in the same statement. Every task ends: one still open ``task_timeout_s`` (or its
action's own timeout) after the gateway accepted it, or one its channel has answered without for
``forgotten_after_polls`` polls in a row, fails and is refunded. A poll that gets no answer
counts as a failed attempt towards the channel's cooldown; one that gets an answer ends the
channel's failure streak. ``export_backlog`` sets the gauges of what waits, also a job of the
leader's.

A round spreads its list calls to each channel over the first ``SPREAD_SHARE`` of the poll
interval, where it would otherwise make them back to back: each call and the writes that follow
it keep the channel, the database and this process busy together for some 10-20 ms, and made
one after the other they held up every request that came meanwhile. A call that is late starts
at once, so a round that has more to do than the interval allows is not slowed. For the same
reason a light round asks in smaller batches (``batch_size``): the work that follows a call
grows with its batch.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass

import asyncpg
import structlog

from gateway import metrics
from gateway.domain import Channel
from gateway.errors import UpstreamError
from gateway.routing import health
from gateway.routing.cooldowns import Cooldowns
from gateway.routing.directory import ChannelDirectory
from gateway.storage import task_sync
from gateway.storage.backlog import backlog
from gateway.tasks.ended import OnEnded, ends_written
from gateway.upstream.client import UpstreamClient

log = structlog.get_logger(__name__)

SPREAD_SHARE = 0.75
CALLS_PER_ROUND = 40  # to one channel, before its batches grow to the configured size
SMALLEST_BATCH = 10
TIMED_OUT_REASON = "timed out: no result from the upstream in time"
FORGOTTEN_REASON = "the upstream no longer knows this task"


def batch_size(tasks: int, largest: int) -> int:
    """The ids per list call of a round that asks a channel about ``tasks`` tasks: as few as
    make ``CALLS_PER_ROUND`` calls, but no fewer than ``SMALLEST_BATCH`` and no more than
    ``largest`` (``GATEWAY_RELAY__POLL_BATCH_SIZE``). A light round so makes more and smaller
    calls, each followed by a shorter burst of work; a heavy one makes full ones, which cost
    the least per task."""
    return min(largest, max(SMALLEST_BATCH, -(-tasks // CALLS_PER_ROUND)))


class PollMemory:
    """What the poller remembers of each open task it asks about: when it last asked (for
    ``gateway_poll_lag_seconds``), and the digest of the task object it last wrote, so that
    the same object sent again is neither read nor written again."""

    def __init__(self, max_tasks_per_round: int, longest_life_s: float) -> None:
        self._max_tasks = max_tasks_per_round
        self._longest_life_s = longest_life_s
        self._at_s: dict[int, float] = {}
        self.written: dict[int, bytes] = {}  # task id -> digest of the object last written

    def ask(self, task_ids: list[int], every_one: bool, now_s: float) -> list[float]:
        """How long each task asked about now went unasked: since this process last asked, or
        since its submit (the first 13 digits of its id, epoch ms) if it never did.

        ``every_one``: these are all the open tasks, so the others have ended and are
        forgotten. A round that asks about only some (running ones) forgets nothing; where
        more are open than a round takes, what went unasked longer than any task lives goes."""
        lags = [max(0.0, now_s - self._at_s.get(t, t // 1000 / 1000)) for t in task_ids]
        if every_one:
            self._at_s = dict.fromkeys(task_ids, now_s)
        else:
            self._at_s.update(dict.fromkeys(task_ids, now_s))
        if len(self._at_s) > 2 * self._max_tasks:
            oldest_s = now_s - self._longest_life_s
            self._at_s = {t: at for t, at in self._at_s.items() if at >= oldest_s}
        if len(self.written) > len(self._at_s):
            self.written = {t: d for t, d in self.written.items() if t in self._at_s}
        return lags

    def __len__(self) -> int:
        return len(self._at_s)


@dataclass
class RoundStats:
    asked: int = 0
    changed: int = 0
    refunded: int = 0
    channel_errors: int = 0
    timed_out: int = 0
    forgotten: int = 0


class Poller:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: ChannelDirectory,
        upstream: UpstreamClient,
        cooldowns: Cooldowns,
        *,
        batch_size: int = 100,
        task_timeout_s: float = 1800.0,
        task_timeouts_s: dict[str, float] | None = None,
        young_s: float = 120.0,
        waiting_every: int = 5,
        forgotten_after_polls: int = 5,
        max_tasks_per_round: int = 50_000,
        on_ended: OnEnded | None = None,
        interval_s: float = 0.0,
    ) -> None:
        """``on_ended``: called with the ids of the tasks each write ended. ``interval_s``: the
        poll interval, over which a round spreads its list calls (0: back to back)."""
        self._pool = pool
        self._channels = channels
        self._upstream = upstream
        self._cooldowns = cooldowns
        self._batch_size = batch_size
        self._task_timeout_s = task_timeout_s
        self._task_timeouts_s = task_timeouts_s or {}
        self._young_s = young_s
        self._waiting_every = waiting_every
        self._rounds = 0
        self._forgotten_after_polls = forgotten_after_polls
        self._max_tasks = max_tasks_per_round
        self._on_ended = on_ended
        self._spread_s = interval_s * SPREAD_SHARE
        self._after_id = 0  # a round reads the open tasks in id order from past this one
        self._memory = PollMemory(
            max_tasks_per_round, max([task_timeout_s, *(task_timeouts_s or {}).values()])
        )

    async def run_once(self) -> RoundStats:
        """One round: end overdue tasks, sync open tasks from their channels."""
        stats = RoundStats()
        started = time.monotonic()
        now_ms = int(time.time() * 1000)
        overdue = await task_sync.overdue_tasks(
            self._pool, now_ms, self._task_timeout_s, self._task_timeouts_s, self._max_tasks
        )
        if overdue:
            written = await task_sync.end_tasks(self._pool, overdue, "FAILURE", TIMED_OUT_REASON)
            ends_written(written, self._on_ended)
            stats.timed_out = written.changed
            stats.refunded += written.refunded
        by_channel: dict[int, dict[str, int]] = defaultdict(dict)
        self._rounds += 1
        waiting_too = (self._rounds - 1) % self._waiting_every == 0
        young_since_ms = now_ms - int(self._young_s * 1000)
        open_tasks = await task_sync.open_upstream_tasks(
            self._pool,
            self._max_tasks,
            waiting_too=waiting_too,
            young_since_ms=young_since_ms,
            after_id=self._after_id,
        )
        if not open_tasks and self._after_id:  # the last round took the last of them
            self._after_id = 0
            open_tasks = await task_sync.open_upstream_tasks(
                self._pool, self._max_tasks, waiting_too=waiting_too, young_since_ms=young_since_ms
            )
        # Every open task, when this round takes all of them from the oldest on.
        every_one = waiting_too and not self._after_id and len(open_tasks) < self._max_tasks
        # More open than a round takes: the next round goes on from here, so every task is
        # asked about in turn. Else it starts again from the oldest.
        self._after_id = open_tasks[-1][0] if len(open_tasks) == self._max_tasks else 0
        for task_id, channel_id, upstream_id in open_tasks:
            by_channel[channel_id][upstream_id] = task_id
        self._observe_lag([task_id for task_id, _, _ in open_tasks], every_one)
        jobs = []
        for channel_id, tasks in by_channel.items():
            channel = await self._channels.get(channel_id)
            if channel is not None:
                jobs.append(self._poll_channel(channel, tasks, stats, started))
        await asyncio.gather(*jobs)
        metrics.POLL_LAST_ROUND.set(time.time())
        return stats

    def _observe_lag(self, task_ids: list[int], every_one: bool) -> None:
        for lag_s in self._memory.ask(task_ids, every_one, time.time()):
            metrics.POLL_LAG.observe(lag_s)

    async def _poll_channel(
        self, channel: Channel, tasks: dict[str, int], stats: RoundStats, started: float
    ) -> None:
        """Ask the channel about its tasks, the batches spread from ``started`` (monotonic s)
        over the round's share of the interval."""
        upstream_ids = list(tasks)
        size = batch_size(len(upstream_ids), self._batch_size)
        batches = range(0, len(upstream_ids), size)
        for number, start in enumerate(batches):
            late_s = time.monotonic() - started - self._spread_s * number / len(batches)
            if late_s < 0:
                await asyncio.sleep(-late_s)
            batch = upstream_ids[start : start + size]
            stats.asked += len(batch)
            try:
                await self._poll_batch(channel, tasks, batch, stats)
            except UpstreamError as exc:
                metrics.UPSTREAM_REQUESTS.labels(channel.name, "list", "none", "failed").inc()
                stats.channel_errors += 1
                log.warning("poll_failed", channel=channel.name, error=str(exc))
                await health.note_poll(self._cooldowns, channel, exc)
                return
            except (ValueError, TypeError, asyncpg.DataError) as exc:
                stats.channel_errors += 1
                log.exception("poll_batch_unreadable", channel=channel.name, error=str(exc))

    async def _poll_batch(
        self, channel: Channel, tasks: dict[str, int], batch: list[str], stats: RoundStats
    ) -> None:
        """Ask the channel for one batch and write what it says (or does not say); an object
        the same as the one last written for its task is left as it is."""
        written_before = self._memory.written
        known = {
            written_before[tasks[upstream_id]]: upstream_id
            for upstream_id in batch
            if tasks[upstream_id] in written_before
        }
        found = await self._upstream.list_by_condition(channel, batch, known)
        metrics.UPSTREAM_REQUESTS.labels(channel.name, "list", "none", "answered").inc()
        await health.note_poll(self._cooldowns, channel, None)
        for unfit in found.refused:
            metrics.UPSTREAM_TASKS_REFUSED.labels(channel.name, unfit.reason).inc()
            log.warning(
                "upstream_task_refused",
                channel=channel.name,
                upstream_task_id=unfit.upstream_task_id,
                error=str(unfit),
            )
        updates = [
            (tasks[u.upstream_task_id], u) for u in found.updates if u.upstream_task_id in tasks
        ]
        written = await task_sync.apply_upstream_updates(self._pool, updates)
        for task_id, update in updates:
            self._memory.written[task_id] = found.digests[update.upstream_task_id]
        ends_written(written, self._on_ended)
        stats.changed += written.changed
        stats.refunded += written.refunded
        seen = found.upstream_ids()  # an unfit object still shows the channel has the task
        missing = [tasks[i] for i in batch if i not in seen]
        for task_id in missing:  # when it is back, it is written again (its missed polls too)
            self._memory.written.pop(task_id, None)
        await self._count_missing(missing, stats)

    async def _count_missing(self, missing: list[int], stats: RoundStats) -> None:
        """Tasks a channel answered for without them; after enough polls in a row, they fail."""
        if not missing:
            return
        lost = await task_sync.count_missing(self._pool, missing, self._forgotten_after_polls)
        if lost:
            written = await task_sync.end_tasks(self._pool, lost, "FAILURE", FORGOTTEN_REASON)
            ends_written(written, self._on_ended)
            stats.forgotten += written.changed
            stats.refunded += written.refunded
            log.warning("tasks_forgotten_upstream", count=written.changed)


async def export_backlog(pool: asyncpg.Pool, channels: ChannelDirectory) -> None:
    """The gauges of what waits: open holds (and those past their deadline), undelivered
    webhooks, open tasks and tasks in flight by channel, and which channels are enabled."""
    waiting = await backlog(pool)
    metrics.HOLDS_OPEN.set(waiting.holds_open)
    metrics.HOLDS_PAST_DEADLINE.set(waiting.holds_past_deadline)
    metrics.WEBHOOK_BACKLOG.set(waiting.webhooks_pending)
    metrics.TASKS_OPEN.labels("none").set(waiting.tasks_open.get(None, 0))
    for channel in await channels.channels():
        metrics.TASKS_OPEN.labels(channel.name).set(waiting.tasks_open.get(channel.id, 0))
        metrics.CHANNEL_IN_FLIGHT.labels(channel.name).set(waiting.in_flight.get(channel.id, 0))
        metrics.CHANNEL_ENABLED.labels(channel.name).set(int(channel.enabled))
