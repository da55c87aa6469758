"""A customer's tasks: the gallery, a task's page and card, and its buttons pressed through the
``/mj`` submit path with one of the user's own keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from litestar import get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from gateway import admin
from gateway.api.dependencies import Svc
from gateway.api.schemas import ActionBody, ModalBody, RequestBody
from gateway.api.submit_orders import action as action_order
from gateway.api.submit_orders import modal as modal_order
from gateway.api.validation import decode_json, validate
from gateway.container import Services
from gateway.domain import Task
from gateway.errors import BadRequest, NotFound
from gateway.storage import console as console_store
from gateway.storage import tasks as task_store
from gateway.storage.tasks import TaskSearch
from gateway.tasks.orders import SubmitOrder

from ..forms import day, read_form
from ..web import (
    AnyRequest,
    Next,
    SignedIn,
    Visitor,
    act,
    fragment,
    page,
)

Body = TypeVar("Body", bound=RequestBody)
GALLERY_PAGE = 24
TASK_ACTIONS = (
    "IMAGINE", "UPSCALE", "VARIATION", "REROLL", "ZOOM", "PAN", "BLEND", "DESCRIBE", "SHORTEN",
    "SWAP_FACE", "VIDEO", "EDIT", "RETEXTURE", "MODAL",
)  # fmt: skip
STATUS_FILTERS = ("open", "SUCCESS", "FAILURE", "CANCEL", "MODAL")

# Tasks


async def cards(services: Services, visitor: SignedIn, tasks: list[Task]) -> list[dict[str, Any]]:
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
        cards=await cards(services, visitor, tasks),
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
    (card,) = await cards(services, visitor, [task])
    return fragment("task_card.html", card=card)


@get("/tasks/{task_id:int}")
async def task_page(
    request: AnyRequest, services: Svc, visitor: SignedIn, task_id: FromPath[int]
) -> Template:
    task = await _own_task(services, visitor, task_id)
    (card,) = await cards(services, visitor, [task])
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


ROUTES = [gallery, task_card, task_page, press_button, confirm_modal]
