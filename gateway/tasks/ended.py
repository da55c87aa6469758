"""Fetch answers of ended tasks, kept encoded in this process's memory, so that the clients'
polling of tasks that ended costs no database round trip.

A task that ended (SUCCESS, FAILURE, CANCEL) never changes; what could still change its answer is
kept out: a task whose copy into the media store is still to be made is not kept (the copy adds
parts to the answer), and no answer is kept past the moment its signed URLs would change (the
top of an hour) or the media store's retention could delete what it links to. Open tasks are
always read from the database, so a fetch never shows a state older than the one recorded.

Entries are keyed by task id and answer only the task's own user; the oldest go first past the
budget (``GATEWAY_RELAY__ENDED_TASKS_CACHE_MB``).
"""

from __future__ import annotations

from collections import OrderedDict

from gateway import metrics

_ENTRY_OVERHEAD = 200  # bytes of a key, a tuple and the dict's slot, besides the body


class EndedAnswers:
    def __init__(self, budget_bytes: int) -> None:
        self._budget = budget_bytes
        self._used = 0
        self._entries: OrderedDict[int, tuple[int, float, bytes]] = OrderedDict()

    def get(self, task_id: int, user_id: int, now_s: float) -> bytes | None:
        """The kept answer of the user's task, if it is still good at ``now_s``."""
        entry = self._entries.get(task_id)
        if entry is None or entry[0] != user_id:
            return None
        if now_s > entry[1]:
            self._drop(task_id)
            return None
        metrics.ENDED_TASK_FETCHES.labels("memory").inc()
        return entry[2]

    def put(self, task_id: int, user_id: int, good_until_s: float, body: bytes) -> None:
        """Keep the answer of an ended task until ``good_until_s``."""
        size = len(body) + _ENTRY_OVERHEAD
        if size > self._budget:
            return
        self._drop(task_id)
        while self._used + size > self._budget:
            oldest, _ = next(iter(self._entries.items()))
            self._drop(oldest)
        self._entries[task_id] = (user_id, good_until_s, body)
        self._used += size

    def _drop(self, task_id: int) -> None:
        entry = self._entries.pop(task_id, None)
        if entry is not None:
            self._used -= len(entry[2]) + _ENTRY_OVERHEAD

    def __len__(self) -> int:
        return len(self._entries)
