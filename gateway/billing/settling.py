"""Settling holds in batches: the settles that arrive while one batch is being written go
together into the next, as one statement and one durable commit.

Under load many submits reach their settle at once. Alone, each would be a statement and a disk
flush of its own; combined, they share both. A lone settle is written at once, with no added
wait, and each caller still learns whether its own hold was settled. A settle whose caller is
cancelled is still written: the upstream task exists, so its charge is kept.
"""

from __future__ import annotations

import asyncio

import asyncpg

from gateway.storage import holds
from gateway.storage.holds import Settle


class Settler:
    def __init__(self, pool: asyncpg.Pool, max_batch: int = 500) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._waiting: list[tuple[Settle, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def settle(self, settle: Settle) -> bool:
        """True if this call settled the hold, False if it was already resolved."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((settle, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        """Write batches until nobody waits."""
        batch: list[tuple[Settle, asyncio.Future[bool]]] = []
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

    async def _write_batch(self, batch: list[tuple[Settle, asyncio.Future[bool]]]) -> None:
        """One statement for the batch; if it fails, each settle alone, so that a settle the
        database refuses fails only its own caller."""
        try:
            settled = await holds.settle_holds(self._pool, [s for s, _ in batch])
        except Exception as exc:
            if len(batch) > 1:
                for item in batch:
                    await self._write_batch([item])
            elif not batch[0][1].done():
                batch[0][1].set_exception(exc)
            return
        for settle, future in batch:
            won = settle.hold_id in settled
            settled.discard(settle.hold_id)  # a hold named twice is settled once
            if not future.done():
                future.set_result(won)
