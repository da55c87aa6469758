"""Fetch answers of ended tasks, kept encoded in this process's memory, so that the clients'
polling of tasks that ended costs no database round trip.

A task that ended (SUCCESS, FAILURE, CANCEL) never changes; what could still change its answer is
kept out: a task whose copy into the media store is still to be made is not kept (the copy adds
parts to the answer), and no answer is kept past the moment its signed URLs would change (the
top of an hour) or the media store's retention could delete what it links to. Open tasks are
always read from the database, so a fetch never shows a state older than the one recorded.

Entries are keyed by task id and answer only the task's own user; the oldest go first past the
budget (``GATEWAY_RELAY__ENDED_TASKS_CACHE_MB``). Answers are kept, and shared, compressed with
LZ4: an imagine's answer (its nine buttons name the same upstream hash) takes about a third of its
3 KB, and is given back in under a microsecond, so a budget holds three times the answers for no
measurable cost to a fetch.

A process that writes an end (the poller, a channel's callback), or makes the media copy that
was all an ended task still waited for, shares the answers on a Redis channel, and every
process, itself included, keeps them: the first fetch after a task ended, the
one a polling client makes, costs no database read in whichever worker answers it. Sharing is
best effort: a process that misses a message (Redis down, a process started later), like the
end of a cancel or of the hold sweeper (not shared), reads the task from the database at its
first fetch and keeps it from then on.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Sequence

import lz4.block
import msgspec
import redis.asyncio as aioredis
import structlog

from gateway import metrics
from gateway.storage.redis import follow
from gateway.storage.task_sync import Written

log = structlog.get_logger(__name__)

_ENTRY_OVERHEAD = 200  # bytes of a key, a tuple and the dict's slot, besides the body

# One answer to keep: (task id, user id, good until epoch s, the answer's JSON); shared between
# processes with the JSON compressed.
Entry = tuple[int, int, float, bytes]
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list[Entry]).decode

OnEnded = Callable[[list[int]], None]
"""Told the ids of tasks whose answers just stopped changing (``TaskReader.ended_now``)."""


def ends_written(written: Written, on_ended: OnEnded | None) -> None:
    """Count the tasks a write ended and what it refunded, and tell ``on_ended`` of them."""
    metrics.count_ends(written.finished, written.refunded_units)
    if written.finished and on_ended is not None:
        on_ended([ended.task_id for ended in written.finished])


class EndedAnswers:
    def __init__(
        self, budget_bytes: int, redis: aioredis.Redis | None = None, channel: str = ""
    ) -> None:
        """``redis`` and ``channel``: where answers are shared between processes (none: this
        process keeps only what it reads itself)."""
        self._budget = budget_bytes
        self._used = 0
        self._entries: OrderedDict[int, tuple[int, float, bytes]] = OrderedDict()
        self._redis = redis
        self._channel = channel

    @property
    def shared(self) -> bool:
        """Whether answers shared now would be kept anywhere."""
        return self._redis is not None and self._budget > 0

    def get(self, task_id: int, user_id: int, now_s: float) -> bytes | None:
        """The kept answer of the user's task, if it is still good at ``now_s``."""
        entry = self._entries.get(task_id)
        if entry is None or entry[0] != user_id:
            return None
        if now_s > entry[1]:
            self._drop(task_id)
            return None
        metrics.ENDED_TASK_FETCHES.labels("memory").inc()
        body: bytes = lz4.block.decompress(entry[2])
        return body

    def put(self, task_id: int, user_id: int, good_until_s: float, body: bytes) -> None:
        """Keep the answer of an ended task until ``good_until_s``."""
        self._keep(task_id, user_id, good_until_s, lz4.block.compress(body))

    async def share(self, entries: Sequence[Entry]) -> None:
        """Offer answers of tasks that just ended to every process (this one too, through its
        own ``listen``). Best effort: if Redis is down, each process reads them when asked."""
        if entries and self.shared and self._redis is not None:
            packed = [(t, u, until, lz4.block.compress(body)) for t, u, until, body in entries]
            with contextlib.suppress(aioredis.RedisError, OSError):
                await self._redis.publish(self._channel, _encode(packed))

    async def listen(self) -> None:
        """Run until cancelled: keep the answers any process shares."""
        if self.shared and self._redis is not None:
            await follow(self._redis, self._channel, self._take)

    def _take(self, message: bytes) -> None:
        try:
            entries = _decode(message)
        except msgspec.DecodeError as exc:
            log.warning("ended_answers_unreadable", error=str(exc))
            return
        for task_id, user_id, good_until_s, packed in entries:
            self._keep(task_id, user_id, good_until_s, packed)

    def _keep(self, task_id: int, user_id: int, good_until_s: float, packed: bytes) -> None:
        """Keep a compressed answer, the oldest going first past the budget."""
        size = len(packed) + _ENTRY_OVERHEAD
        if size > self._budget:
            return
        self._drop(task_id)
        while self._used + size > self._budget:
            oldest, _ = next(iter(self._entries.items()))
            self._drop(oldest)
        self._entries[task_id] = (user_id, good_until_s, packed)
        self._used += size

    def _drop(self, task_id: int) -> None:
        entry = self._entries.pop(task_id, None)
        if entry is not None:
            self._used -= len(entry[2]) + _ENTRY_OVERHEAD

    def __len__(self) -> int:
        return len(self._entries)
