"""The operator's searches of tasks and of the ledger (and the search values, for the admin API
and the CLI)."""

from __future__ import annotations

import asyncpg

from gateway.admin.views import page_size
from gateway.domain import Task
from gateway.errors import BadRequest
from gateway.storage import tasks as task_store
from gateway.storage.ledger import LEDGER_KINDS, LedgerRow, LedgerSearch, ledger_rows
from gateway.storage.tasks import TaskSearch

__all__ = ["LEDGER_KINDS", "TASK_STATUSES", "LedgerSearch", "TaskSearch", "ledger", "search_tasks"]

TASK_STATUSES = (
    "SUBMITTING", "REJECTED", "NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS", "FAILURE",
    "SUCCESS", "CANCEL",
)  # fmt: skip


async def search_tasks(pool: asyncpg.Pool, search: TaskSearch) -> list[Task]:
    if search.status is not None and search.status not in TASK_STATUSES:
        raise BadRequest(f"status is one of {', '.join(TASK_STATUSES)}")
    page_size(search.limit)
    return await task_store.search_tasks(pool, search)


async def ledger(pool: asyncpg.Pool, search: LedgerSearch) -> list[LedgerRow]:
    if search.kind is not None and search.kind not in LEDGER_KINDS:
        raise BadRequest(f"kind is one of {', '.join(LEDGER_KINDS)}")
    page_size(search.limit)
    return await ledger_rows(pool, search)
