"""Billing for the submit path: what a request costs, holding it, and resolving the hold.

Holds are taken before anything goes upstream and resolved exactly once: settled when an
upstream task exists, released when none does. Refunds of tasks that end badly happen with the
task's terminal update (``gateway.storage.task_sync.apply_upstream_updates``).

Holds and settles that arrive together are written in batches (``gateway.billing.batches``).
Holds are written through a pool whose commits do not wait for the disk: a user's balance row is
then locked only while the hold statement runs, not through a disk flush, so one busy user's
submits do not queue behind each other. The settle or release that follows commits durably and
so flushes the hold with it. A database crash in between loses the hold and its debit together:
the client got no task id, and no money moved.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from gateway import metrics
from gateway.auth.limits import KEY_OPEN_TASKS, USER_OPEN_TASKS, open_tasks_refused
from gateway.billing import batches
from gateway.billing.prices import BASIS_POINTS, PriceBook
from gateway.domain import Principal
from gateway.errors import BadRequest, InsufficientBalance, NotFound
from gateway.storage import accounts, holds, prices
from gateway.storage.accounts import Account
from gateway.storage.holds import Held, HoldRefusal, NewTask, Settle
from gateway.storage.usage import UsageRow, usage_rows

MAX_USAGE_SPAN = timedelta(days=366)
_REFUSALS = {
    HoldRefusal.USER_BALANCE: "insufficient balance",
    HoldRefusal.KEY_LIMIT: "insufficient quota left on this API key",
}


class Billing:
    def __init__(
        self,
        pool: asyncpg.Pool,
        hold_pool: asyncpg.Pool,
        hold_deadline_s: float = 600.0,
        refresh_s: float = 5.0,
        finished_holds_keep_s: float = 7 * 86_400.0,
    ) -> None:
        self._pool = pool
        self._hold_pool = hold_pool
        self._hold_deadline_s = hold_deadline_s
        self._holds = batches.new_task_holds(hold_pool, hold_deadline_s)
        self._settles = batches.settles(pool)
        self._refresh_s = refresh_s
        self._finished_holds_keep_s = finished_holds_keep_s
        self._book: PriceBook | None = None
        self._loaded_at = float("-inf")

    async def price_book(self) -> PriceBook:
        """The operator's prices, at most ``refresh_s`` old."""
        if self._book is None or time.monotonic() - self._loaded_at > self._refresh_s:
            base, modes = await prices.load_price_book(self._pool)
            self._book = PriceBook(base, modes)
            self._loaded_at = time.monotonic()
        return self._book

    async def price(
        self, principal: Principal, price_action: str, mode: str, quantity_bp: int = BASIS_POINTS
    ) -> int:
        book = await self.price_book()
        try:
            return book.price_units(price_action, mode, principal.group_ratio_bp, quantity_bp)
        except KeyError:
            raise BadRequest(f"action {price_action} has no price; ask the operator") from None

    async def hold_new_task(self, task: NewTask) -> Held:
        """Hold the task's price and record it as SUBMITTING; InsufficientBalance (403/25), or
        RateLimited (429/23) when a cap on open tasks is reached."""
        if task.capped:
            held = await holds.hold_new_task(self._hold_pool, task, self._hold_deadline_s)
        else:
            held = await self._holds.write(task)
        if held is HoldRefusal.KEY_OPEN_TASKS:
            raise open_tasks_refused(KEY_OPEN_TASKS, task.key_max_open_tasks or 0)
        if held is HoldRefusal.USER_OPEN_TASKS:
            raise open_tasks_refused(USER_OPEN_TASKS, task.user_max_open_tasks or 0)
        if isinstance(held, HoldRefusal):
            metrics.BILLING_REFUSALS.labels(held.value).inc()
            raise InsufficientBalance(_REFUSALS[held])
        return held

    async def hold_modal(
        self, principal: Principal, task_id: int, price_action: str, price_units: int
    ) -> Held:
        """Hold the price of confirming a MODAL task; BadRequest if it is not awaiting one."""
        held = await holds.hold_modal_task(
            self._hold_pool,
            principal.user_id,
            principal.key_id,
            task_id,
            price_action,
            price_units,
            self._hold_deadline_s,
        )
        if held is None:
            raise BadRequest("task is not waiting for a modal confirmation")
        if isinstance(held, HoldRefusal):
            metrics.BILLING_REFUSALS.labels(held.value).inc()
            raise InsufficientBalance(_REFUSALS[held])
        return held

    async def settle(
        self,
        held: Held,
        *,
        status: str,
        channel_id: int,
        upstream_task_id: str | None,
        description: str | None,
        properties: dict[str, Any],
        prompt_en: str | None = None,
        prompt_urls: int | None = None,
    ) -> bool:
        """Keep the held charge: an upstream task exists. False if already resolved."""
        return await self._settles.write(
            Settle(
                held.hold_id,
                status,
                channel_id,
                upstream_task_id,
                description,
                properties,
                prompt_en,
                prompt_urls,
            )
        )

    async def release(
        self,
        held: Held,
        *,
        task_status: str,
        reason: str,
        channel_id: int | None = None,
        upstream_task_id: str | None = None,
        description: str | None = None,
        properties: dict[str, Any] | None = None,
        prompt_urls: int | None = None,
    ) -> bool:
        """Give the held amount back; the task becomes ``task_status`` (REJECTED or MODAL)."""
        return await holds.release_hold(
            self._pool,
            held.hold_id,
            task_status,
            reason,
            channel_id=channel_id,
            upstream_task_id=upstream_task_id,
            description=description,
            properties=properties,
            prompt_urls=prompt_urls,
        )

    async def forget_finished_holds(self, page: int = 10_000) -> int:
        """Keep the holds table to the recent past: holds of ended tasks go
        ``finished_holds_keep_s`` after they were resolved (the ledger keeps them). How many."""
        forgotten = 0
        while True:
            batch = await holds.forget_finished_holds(self._pool, self._finished_holds_keep_s, page)
            forgotten += batch
            if batch < page:
                return forgotten

    async def account(self, principal: Principal) -> Account:
        found = await accounts.account(self._pool, principal.user_id, principal.key_id)
        if found is None:  # the key was authenticated a moment ago; its rows are never deleted
            raise NotFound("account not found")
        return found

    async def usage(
        self, user_id: int | None, key_id: int | None, since: datetime, until: datetime
    ) -> list[UsageRow]:
        """Charges kept and refunds by action and UTC day in [since, until), at most a year."""
        if not since < until <= since + MAX_USAGE_SPAN:
            raise BadRequest("the usage period must be from 1 second to 366 days long")
        return await usage_rows(self._pool, user_id, key_id, since, until)
