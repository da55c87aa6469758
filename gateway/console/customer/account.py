"""A customer's home, ledger (and its CSV), webhook secret and password."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from litestar import Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Stream, Template

from gateway import admin
from gateway.api.account import usage_period
from gateway.api.dependencies import Svc
from gateway.errors import BadRequest
from gateway.storage import tasks as task_store
from gateway.storage.ledger import LedgerSearch
from gateway.storage.tasks import TaskSearch

from .. import accounts
from ..charts import cost_chart
from ..forms import read_form
from ..web import (
    AnyRequest,
    SignedIn,
    base_url,
    page,
    set_session_cookie,
)
from .tasks import cards

LEDGER_PAGE = 50
CSV_MAX_ROWS = 100_000


@get("/")
async def home(request: AnyRequest, services: Svc, visitor: SignedIn) -> Template:
    start, end = usage_period(None, None)
    usage = await services.billing.usage(visitor.user.id, None, start, end)
    open_tasks = await task_store.search_tasks(
        services.pool, TaskSearch(user_id=visitor.user.id, open_only=True, limit=10)
    )
    return await page(
        request,
        "home.html",
        visitor,
        chart=cost_chart(usage, start.date(), end.date()),
        open_tasks=await cards(services, visitor, open_tasks),
        base=base_url(request),
    )


# Usage


@get("/usage")
async def usage(
    request: AnyRequest,
    services: Svc,
    visitor: SignedIn,
    kind: FromQuery[str | None] = None,
    before: FromQuery[int | None] = None,
) -> Template:
    kind = kind or None
    rows = await admin.ledger(
        services.pool,
        LedgerSearch(user_id=visitor.user.id, kind=kind, before_id=before, limit=LEDGER_PAGE),
    )
    return await page(
        request,
        "usage.html",
        visitor,
        rows=rows,
        kinds=admin.LEDGER_KINDS,
        kind=kind,
        more={**({"kind": kind} if kind else {}), "before": rows[-1].id}
        if len(rows) == LEDGER_PAGE
        else None,
    )


@get("/usage.csv")
async def usage_csv(services: Svc, visitor: SignedIn) -> Stream:
    """The whole ledger of the account, newest first, as CSV (at most 100,000 rows)."""

    async def rows() -> AsyncIterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "time", "kind", "units", "key_id", "task_id", "reason"])
        before = None
        sent = 0
        while sent < CSV_MAX_ROWS:
            search = LedgerSearch(user_id=visitor.user.id, before_id=before, limit=admin.MAX_PAGE)
            found = await admin.ledger(services.pool, search)
            for row in found:
                writer.writerow(
                    [
                        row.id,
                        row.created_at.astimezone(UTC).isoformat(),
                        row.kind,
                        row.amount_units,
                        row.api_key_id or "",
                        row.task_id or "",
                        _cell(row.reason),
                    ]
                )
            sent += len(found)
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if len(found) < admin.MAX_PAGE:
                return
            before = found[-1].id

    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return Stream(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="ledger-{stamp}.csv"'},
    )


def _cell(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# Webhooks and account


@get("/webhooks")
async def webhooks(request: AnyRequest, visitor: SignedIn) -> Template:
    return await page(request, "webhooks.html", visitor)


@get("/account")
async def account(request: AnyRequest, visitor: SignedIn) -> Template:
    return await page(request, "account.html", visitor)


@post("/account/password")
async def change_password(request: AnyRequest, services: Svc, visitor: SignedIn) -> Response[Any]:
    """Every session of the user ends; this browser gets a new one."""
    form = await read_form(request)
    try:
        await accounts.change_password(
            services.pool,
            services.sessions,
            visitor.user.id,
            form.secret("current"),
            form.secret("password"),
            form.secret("confirmation"),
        )
    except BadRequest as exc:
        await services.sessions.say(visitor.session, "error", exc.description)
        return Redirect(path="/console/account", status_code=303)
    token, session = await services.sessions.start(visitor.user.id)
    await services.sessions.say(session, "ok", "password changed; other sessions were signed out")
    response = Redirect(path="/console/account", status_code=303)
    set_session_cookie(request, response, token)
    return response


ROUTES = [home, usage, usage_csv, webhooks, account, change_password]
