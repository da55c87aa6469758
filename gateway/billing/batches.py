"""Money writes made in batches: the holds (or settles) that arrive while one batch is being
written go together into the next, as one statement and one commit.

Under load many submits reach their hold, and later their settle, at once. Alone, each would be
a statement, a commit and an update of the user's balance row of its own; combined, they share
them. A lone write goes at once, with no added wait, and each caller still learns its own
outcome. A write whose caller is cancelled is still made: a settle because the upstream task
exists, a hold because the sweeper resolves any hold left open (``gateway.tasks.sweeper``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import asyncpg

from gateway.storage import holds
from gateway.storage.holds import Held, HoldRefusal, NewTask, Settle

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class Batches(Generic[Item, Outcome]):
    """Calls ``write_many`` with what waits, at most ``max_batch`` at a time; it must answer one
    outcome per item, in order.

    A batch the database refuses (a ``PostgresError``: nothing of it was written) is written
    again item by item, so that a bad item, or a deadlock, fails only its own caller. A batch
    whose outcome is unknown (the connection failed, the wait timed out) is written again only
    when writing an item twice changes nothing (``idempotent``); otherwise each of its callers
    gets the error, and whatever was written is left to the sweeper.
    """

    def __init__(
        self,
        write_many: Callable[[Sequence[Item]], Awaitable[Sequence[Outcome]]],
        max_batch: int,
        *,
        idempotent: bool,
    ) -> None:
        self._write_many = write_many
        self._max_batch = max_batch
        self._idempotent = idempotent
        self._waiting: list[tuple[Item, asyncio.Future[Outcome]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(self, item: Item) -> Outcome:
        """This item's outcome, once the batch it went in is written."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        """Write batches until nobody waits."""
        batch: list[tuple[Item, asyncio.Future[Outcome]]] = []
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._write_batch(batch)
        finally:
            self._writer = None
            for _, future in batch + self._waiting:  # not done only if this task was cancelled
                future.cancel()
            self._waiting.clear()

    async def _write_batch(self, batch: list[tuple[Item, asyncio.Future[Outcome]]]) -> None:
        try:
            outcomes = await self._write_many([item for item, _ in batch])
        except Exception as exc:
            refused = isinstance(exc, asyncpg.PostgresError)
            if len(batch) > 1 and (refused or self._idempotent):
                for one in batch:
                    await self._write_batch([one])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)


def new_task_holds(
    pool: asyncpg.Pool, hold_deadline_s: float, max_batch: int = 100
) -> Batches[NewTask, Held | HoldRefusal]:
    """Holds of new tasks without a cap on open tasks (``holds.hold_new_tasks``)."""

    async def write_many(tasks: Sequence[NewTask]) -> list[Held | HoldRefusal]:
        return await holds.hold_new_tasks(pool, tasks, hold_deadline_s)

    return Batches(write_many, max_batch, idempotent=False)


def settles(pool: asyncpg.Pool, max_batch: int = 500) -> Batches[Settle, bool]:
    """Settles: True for the call that settled its hold, False if the hold was already resolved
    (a hold named twice in a batch is settled once)."""

    async def write_many(batch: Sequence[Settle]) -> list[bool]:
        settled = await holds.settle_holds(pool, batch)
        won = []
        for settle in batch:
            won.append(settle.hold_id in settled)
            settled.discard(settle.hold_id)
        return won

    return Batches(write_many, max_batch, idempotent=True)
