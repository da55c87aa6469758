"""A customer's pages: home, keys, tasks (gallery, detail, buttons), usage, webhooks, account.

Every read is of the signed-in user's own records (their id is in every query), and anything
else is a 404, the same as a record that does not exist. Buttons go through the ``/mj`` submit
path (the same body checks, prices, holds and key rules) with one of the user's own keys.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from litestar import Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

from gateway import admin
from gateway.api.account import usage_period
from gateway.api.dependencies import Svc
from gateway.api.schemas import ActionBody, ModalBody, RequestBody
from gateway.api.submit_orders import action as action_order
from gateway.api.submit_orders import modal as modal_order
from gateway.api.validation import decode_json, validate
from gateway.container import Services
from gateway.domain import KeySettings, Task
from gateway.errors import BadRequest, NotFound
from gateway.storage import console as console_store
from gateway.storage import tasks as task_store
from gateway.storage.accounts import KeyListing
from gateway.storage.ledger import LedgerSearch
from gateway.storage.tasks import TaskSearch
from gateway.tasks.orders import SubmitOrder

from . import accounts
from .charts import cost_chart
from .forms import day, read_form
from .web import (
    AnyRequest,
    Next,
    SignedIn,
    Visitor,
    act,
    base_url,
    fragment,
    page,
    set_session_cookie,
)

Body = TypeVar("Body", bound=RequestBody)
GALLERY_PAGE = 24
LEDGER_PAGE = 50
CSV_MAX_ROWS = 100_000
TASK_ACTIONS = (
    "IMAGINE", "UPSCALE", "VARIATION", "REROLL", "ZOOM", "PAN", "BLEND", "DESCRIBE", "SHORTEN",
    "SWAP_FACE", "VIDEO", "EDIT", "RETEXTURE", "MODAL",
)  # fmt: skip
STATUS_FILTERS = ("open", "SUCCESS", "FAILURE", "CANCEL", "MODAL")


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
        open_tasks=await _cards(services, visitor, open_tasks),
        base=base_url(request),
    )


# Keys


async def _own_key(services: Services, visitor: SignedIn, key_id: int) -> KeyListing:
    key = await admin.key(services.pool, key_id)
    if key.user_id != visitor.user.id or key.revoked_at is not None:
        raise NotFound(f"no key {key_id}")
    return key


async def _keys_page(
    request: AnyRequest, services: Services, visitor: SignedIn, **extra: Any
) -> Template:
    keys = await admin.list_keys(services.pool, visitor.user.id, False, None, admin.MAX_PAGE)
    book = await admin.price_list(services.pool)
    return await page(
        request,
        "keys.html",
        visitor,
        keys=keys,
        actions=sorted(book.prices_units),
        max_keys=services.settings.console.max_keys,
        base=base_url(request),
        **extra,
    )


@get("/keys")
async def keys(request: AnyRequest, services: Svc, visitor: SignedIn) -> Template:
    return await _keys_page(request, services, visitor)


@post("/keys")
async def create_key(request: AnyRequest, services: Svc, visitor: SignedIn) -> Response[Any]:
    """The new key is on this one page, once; it is never shown again."""
    form = await read_form(request)

    async def issue() -> str:
        held = await admin.list_keys(services.pool, visitor.user.id, False, None, admin.MAX_PAGE)
        if len(held) >= services.settings.console.max_keys:
            raise BadRequest(
                f"you hold {len(held)} keys, the most allowed: revoke one to make another"
            )
        settings = KeySettings(
            name=form.text("name", "Name"),
            quota_units=form.number("limit", "Spend limit", high=admin.MAX_UNITS),
            allowed_actions=form.picked("actions") or None,
            allowed_cidrs=form.words("networks", "Networks") or None,
        )
        for action in settings.allowed_actions or ():
            if not admin.PRICE_ACTION.fullmatch(action):
                raise BadRequest(f"{action!r} is not a priced action")
        return (await admin.issue_key(services.pool, visitor.user.id, settings)).key

    try:
        new_key = await issue()
    except BadRequest as exc:
        await services.sessions.say(visitor.session, "error", exc.description)
        return Redirect(path="/console/keys", status_code=303)
    return await _keys_page(request, services, visitor, new_key=new_key)


@post("/keys/{key_id:int}")
async def edit_key(
    request: AnyRequest, services: Svc, visitor: SignedIn, key_id: FromPath[int]
) -> Redirect:
    key = await _own_key(services, visitor, key_id)
    form = await read_form(request)

    async def edit() -> str:
        key_hash = await admin.set_key_scope(
            services.pool,
            key.id,
            form.text("name", "Name"),
            form.picked("actions") or None,
            form.words("networks", "Networks") or None,
        )
        limit = form.number("limit", "Spend limit", high=admin.MAX_UNITS)
        if limit != key.limit_units:
            await admin.set_key_limit(services.pool, key.id, limit, "set in the console")
        await services.auth.announce_revocation(key_hash)  # every process reads it afresh
        return f"key {key.hint} saved"

    return await act(request, visitor, "/console/keys", edit())


@post("/keys/{key_id:int}/revoke")
async def revoke_key(
    request: AnyRequest, services: Svc, visitor: SignedIn, key_id: FromPath[int]
) -> Redirect:
    key = await _own_key(services, visitor, key_id)

    async def revoke() -> str:
        await services.auth.announce_revocation(await admin.revoke_key(services.pool, key.id))
        return f"key {key.hint} revoked: it works no more"

    return await act(request, visitor, "/console/keys", revoke())


# Tasks


async def _cards(services: Services, visitor: SignedIn, tasks: list[Task]) -> list[dict[str, Any]]:
    """What a gallery card shows of each task: its client view, thumbnail and money."""
    money = await console_store.task_money(services.pool, visitor.user.id, [t.id for t in tasks])
    cards = []
    for task in tasks:
        view = services.tasks.view(task)
        videos = view.get("videoUrls")  # a video's picture is its thumbnail, not its "image"
        cards.append(
            {
                "task": task,
                "view": view,
                "thumbnail": videos[0]["thumbnail"] if videos else services.tasks.thumbnail(task),
                "money": money.get(task.id),
                "open": task.status in task_store.OPEN_STATUSES,
            }
        )
    return cards


async def _own_task(services: Services, visitor: SignedIn, task_id: int) -> Task:
    task = await task_store.get_user_task(services.pool, task_id, visitor.user.id)
    if task is None or task.status == "SUBMITTING":
        raise NotFound(f"task {task_id} not found")
    return task


@get("/tasks")
async def gallery(
    request: AnyRequest,
    services: Svc,
    visitor: SignedIn,
    status: FromQuery[str | None] = None,
    action: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    before: FromQuery[int | None] = None,
) -> Template:
    status = status or None
    action = action or None
    if status is not None and status not in STATUS_FILTERS:
        raise BadRequest(f"status is one of {', '.join(STATUS_FILTERS)}")
    if action is not None and action not in TASK_ACTIONS:
        raise BadRequest(f"action is one of {', '.join(TASK_ACTIONS)}")
    search = TaskSearch(
        user_id=visitor.user.id,
        status=None if status == "open" else status,
        open_only=status == "open",
        action=action,
        client_visible=True,
        since_ms=admin.epoch_ms(day("From", since)),
        until_ms=admin.epoch_ms(day("To", until, end=True)),
        before_id=before,
        limit=GALLERY_PAGE,
    )
    tasks = await task_store.search_tasks(services.pool, search)
    filters = {"status": status, "action": action, "since": since, "until": until}
    return await page(
        request,
        "tasks.html",
        visitor,
        cards=await _cards(services, visitor, tasks),
        filters=filters,
        statuses=STATUS_FILTERS,
        actions=TASK_ACTIONS,
        more={**{k: v for k, v in filters.items() if v}, "before": tasks[-1].id}
        if len(tasks) == GALLERY_PAGE
        else None,
    )


@get("/tasks/{task_id:int}/card")
async def task_card(services: Svc, visitor: SignedIn, task_id: FromPath[int]) -> Template:
    """One card of the gallery, for the page's script to swap in while the task runs."""
    task = await _own_task(services, visitor, task_id)
    (card,) = await _cards(services, visitor, [task])
    return fragment("task_card.html", card=card)


@get("/tasks/{task_id:int}")
async def task_page(
    request: AnyRequest, services: Svc, visitor: SignedIn, task_id: FromPath[int]
) -> Template:
    task = await _own_task(services, visitor, task_id)
    (card,) = await _cards(services, visitor, [task])
    keys = await admin.list_keys(services.pool, visitor.user.id, False, None, admin.MAX_PAGE)
    return await page(
        request,
        "task.html",
        visitor,
        card=card,
        keys=[k for k in keys if k.enabled],
        parent_key=task.api_key_id,
        details=json.dumps(card["view"], indent=2, ensure_ascii=False),
    )


def _checked(services: Services, kind: type[Body], body: dict[str, Any]) -> Body:
    """The body as ``/mj`` would read it: the same schema and the same checks."""
    raw = json.dumps(body).encode()
    return validate(decode_json(kind, raw, services.settings.relay.max_body_bytes))


async def _submit(
    request: AnyRequest,
    services: Services,
    visitor: Visitor,
    task: Task,
    order: Callable[[], SubmitOrder],
) -> Redirect:
    """Submit with the key the form names, as ``/mj`` would, and show the new task; or, when
    it is refused (bad input, no balance, no channel free), say why on the task's page."""
    form = await read_form(request)

    async def submit() -> Next:
        key_id = form.required_number("key", "Key", low=1)
        principal, _rate = await services.auth.key_holder(visitor.user.id, key_id)
        submitted = await services.submitter.submit(principal, order())
        message = f"task {submitted.task_id} submitted: {submitted.description}"
        return Next(f"/console/tasks/{submitted.task_id}", message)

    return await act(request, visitor, f"/console/tasks/{task.id}", submit())


@post("/tasks/{task_id:int}/action")
async def press_button(
    request: AnyRequest, services: Svc, visitor: SignedIn, task_id: FromPath[int]
) -> Redirect:
    task = await _own_task(services, visitor, task_id)
    custom_id = (await read_form(request)).text("customId", "Button", required=True)
    body = {"taskId": str(task.id), "customId": custom_id}
    return await _submit(
        request, services, visitor, task, lambda: action_order(_checked(services, ActionBody, body))
    )


@post("/tasks/{task_id:int}/modal")
async def confirm_modal(
    request: AnyRequest, services: Svc, visitor: SignedIn, task_id: FromPath[int]
) -> Redirect:
    """A MODAL task (a remix, a custom zoom) confirmed with its prompt."""
    task = await _own_task(services, visitor, task_id)
    prompt = (await read_form(request)).text("prompt", "Prompt", max_length=8192)
    body = {"taskId": str(task.id), **({"prompt": prompt} if prompt else {})}
    return await _submit(
        request, services, visitor, task, lambda: modal_order(_checked(services, ModalBody, body))
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


ROUTES = [
    home,
    keys,
    create_key,
    edit_key,
    revoke_key,
    gallery,
    task_card,
    task_page,
    press_button,
    confirm_modal,
    usage,
    usage_csv,
    webhooks,
    account,
    change_password,
]
