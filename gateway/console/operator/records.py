"""The overview of the last hour and now, the searches of tasks and of the ledger, and
reconciliation."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from litestar import get, post
from litestar.params import FromQuery
from litestar.response import Template

from gateway import activity, admin
from gateway.api.dependencies import Svc
from gateway.billing.reconciliation import reconcile
from gateway.container import Services
from gateway.errors import BadRequest
from gateway.storage import console as console_store

from ..forms import day
from ..web import AnyRequest, SignedIn, page
from .channels import channel_rows

PAGE = 50
GAP_ROWS = 200  # rows of one reconciliation rule shown on the page

# Overview


@get("/")
async def overview(request: AnyRequest, services: Svc, visitor: SignedIn) -> Template:
    since_ms = int((time.time() - 3600) * 1000)
    return await page(
        request,
        "admin/overview.html",
        visitor,
        hour=await activity.last_hour(services.redis, services.keys),
        figures=await console_store.overview(services.pool, since_ms),
        channels=await channel_rows(services),
    )


# Searches


async def _user_id(services: Services, who: str | None) -> int | None:
    """A user named by id or by name."""
    if not who:
        return None
    if "\x00" in who or len(who) > 128:
        raise BadRequest(f"no user {who[:128]!r}")
    if who.isdigit() and len(who) < 19:
        return int(who)
    return await admin.user_id_by_name(services.pool, who)


def _id(name: str, value: str | None) -> int | None:
    """An id typed in a search form; None when left empty."""
    value = (value or "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise BadRequest(f"{name} is a whole number")
    return int(value)


def _more(filters: dict[str, Any], rows: list[Any]) -> dict[str, Any] | None:
    if len(rows) < PAGE:
        return None
    return {**{k: v for k, v in filters.items() if v not in (None, "")}, "before": rows[-1].id}


@get("/tasks")
async def tasks(
    request: AnyRequest,
    services: Svc,
    visitor: SignedIn,
    user: FromQuery[str | None] = None,
    key: FromQuery[str | None] = None,
    channel: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    before: FromQuery[int | None] = None,
) -> Template:
    who = (user or "").strip()
    filters = {
        "user": who,
        "key": (key or "").strip(),
        "channel": (channel or "").strip(),
        "status": status or "",
        "since": since or "",
        "until": until or "",
    }

    async def search() -> list[Any]:
        wanted = admin.TaskSearch(
            user_id=await _user_id(services, who),
            api_key_id=_id("Key id", key),
            channel_id=_id("Channel id", channel),
            status=status or None,
            since_ms=admin.epoch_ms(day("From", since)),
            until_ms=admin.epoch_ms(day("To", until, end=True)),
            before_id=before,
            limit=PAGE,
        )
        return await admin.search_tasks(services.pool, wanted)

    return await _search_page(
        request, visitor, "admin/tasks.html", filters, search(), statuses=admin.TASK_STATUSES
    )


@get("/ledger")
async def ledger(
    request: AnyRequest,
    services: Svc,
    visitor: SignedIn,
    user: FromQuery[str | None] = None,
    key: FromQuery[str | None] = None,
    kind: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    before: FromQuery[int | None] = None,
) -> Template:
    who = (user or "").strip()
    filters = {
        "user": who,
        "key": (key or "").strip(),
        "kind": kind or "",
        "since": since or "",
        "until": until or "",
    }

    async def search() -> list[Any]:
        wanted = admin.LedgerSearch(
            user_id=await _user_id(services, who),
            api_key_id=_id("Key id", key),
            kind=kind or None,
            since=day("From", since),
            until=day("To", until, end=True),
            before_id=before,
            limit=PAGE,
        )
        return await admin.ledger(services.pool, wanted)

    return await _search_page(
        request, visitor, "admin/ledger.html", filters, search(), kinds=admin.LEDGER_KINDS
    )


async def _search_page(
    request: AnyRequest,
    visitor: SignedIn,
    template: str,
    filters: dict[str, Any],
    search: Awaitable[list[Any]],
    **context: Any,
) -> Template:
    """A search's page: the rows found, or none and the reason a filter was refused."""
    try:
        rows, refused = await search, None
    except BadRequest as exc:
        rows, refused = [], ("error", exc.description)
    return await page(
        request,
        template,
        visitor,
        rows=rows,
        filters=filters,
        more=_more(filters, rows),
        **context,
        **({"said": refused} if refused else {}),
    )


# Reconciliation


@get("/reconciliation")
async def reconciliation(request: AnyRequest, visitor: SignedIn) -> Template:
    return await page(request, "admin/reconciliation.html", visitor, report=None)


@post("/reconciliation")
async def run_reconciliation(request: AnyRequest, services: Svc, visitor: SignedIn) -> Template:
    """``gateway reconcile`` on the page: whether the money adds up, and every place it does not."""
    report = await reconcile(services.pool, hold_grace_s=60.0)
    return await page(
        request,
        "admin/reconciliation.html",
        visitor,
        report=report,
        gap_rows=GAP_ROWS,
        ran_at=datetime.now(UTC),
    )


ROUTES = [overview, tasks, ledger, reconciliation, run_reconciliation]
