"""The midjourney-proxy HTTP API under ``/mj`` (and ``/mj-fast/mj``, ``/mj-relax/mj``,
``/mj-turbo/mj``, whose prefix sets the speed mode as trueai's does).

Submit routes read the body, draw the submit faults (markers first), run the endpoint's handler
and answer ``{code, description, result, properties}``; task routes read the store. The
flavour (``SimulatorSettings.flavour``) decides which routes exist, as UPSTREAM.md's
"Flavours" table has it: a route a flavour lacks is a 404, as there.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.simulator import protocol
from gateway.simulator.engine import Engine, Origin
from gateway.simulator.faults import Markers, SubmitFault, draw_submit_faults, strip_markers
from gateway.simulator.plumbing import (
    ENGINE,
    Handler,
    empty_response,
    guarded,
    json_response,
    transport_fault,
)
from gateway.simulator.protocol import BotType, Mode, ReturnCode, SubmitAnswer, fail
from gateway.simulator.submits import SUBMIT_HANDLERS, SubmitHandler
from gateway.simulator.validation import BANNED_WORDS, Body, Invalid, account_filter

PREFIXES: dict[str, Mode | None] = {
    "/mj": None,
    "/mj-fast/mj": Mode.FAST,
    "/mj-relax/mj": Mode.RELAX,
    "/mj-turbo/mj": Mode.TURBO,
}
TASK_LIST_LIMIT = 100


def _origin(body: Body, markers: Markers, path_mode: Mode | None) -> Origin:
    chosen = account_filter(body)
    return Origin(
        state=body.text("state"),
        notify_hook=body.text("notifyHook") or None,
        mode=path_mode or chosen.mode,
        instance_id=chosen.instance_id,
        bot_type=body.enum("botType", BotType) or BotType.MID_JOURNEY,
        markers=markers,
    )


def _fault_answer(fault: SubmitFault, engine: Engine, prompt: str | None) -> SubmitAnswer:
    if fault is SubmitFault.BANNED:
        word = engine.rng.choice(sorted(BANNED_WORDS))
        prompt_en = strip_markers(prompt)[0] if prompt else None
        return fail(ReturnCode.BANNED_PROMPT, protocol.BANNED, promptEn=prompt_en, bannedWord=word)
    if fault is SubmitFault.NO_ACCOUNT:
        return fail(ReturnCode.NOT_FOUND, protocol.NO_ACCOUNT)
    if fault is SubmitFault.QUEUE_FULL:
        return fail(ReturnCode.QUEUE_REJECTED, protocol.QUEUE_FULL)
    return fail(ReturnCode.FAILURE, protocol.SYSTEM_ERROR)


def _run(handler: SubmitHandler, engine: Engine, body: Body, origin: Origin) -> SubmitAnswer:
    try:
        return handler(engine, body, origin)
    except Invalid as invalid:
        return fail(ReturnCode.VALIDATION_ERROR, invalid.message)


def submit_route(handler: SubmitHandler, path_mode: Mode | None) -> Handler:
    """A submit endpoint: faults drawn per request; a faulted request creates no task, a slow
    one is processed at once and answered late."""

    async def route(request: web.Request) -> web.StreamResponse:
        engine = request.app[ENGINE]
        body = Body.parse(await request.read())
        prompt = body.text("prompt")
        markers = strip_markers(prompt)[1] if prompt else {}
        origin = _origin(body, markers, path_mode)
        faults = draw_submit_faults(engine.faults, markers, engine.rng)
        answer = _run(handler, engine, body, origin) if faults.answer is None else None
        if faults.slow_s:
            await asyncio.sleep(faults.slow_s)
        if faults.answer is not None:
            broken = transport_fault(request, faults.answer)
            if broken is not None:
                return broken
            answer = _fault_answer(faults.answer, engine, prompt)
        return json_response(answer.to_json() if answer is not None else None)

    return route


async def fetch(request: web.Request) -> web.StreamResponse:
    """An unknown id is an empty 200 (open-source, plus) or a 204 (trueai)."""
    engine = request.app[ENGINE]
    task = engine.store.get(request.match_info["id"])
    if task is not None:
        return json_response(task.to_json())
    return empty_response(204 if engine.settings.flavour == "trueai" else 200)


async def task_list(request: web.Request) -> web.StreamResponse:
    tasks = request.app[ENGINE].store.newest(TASK_LIST_LIMIT)
    return json_response([task.to_json() for task in tasks])


async def list_by_condition(request: web.Request) -> web.StreamResponse:
    ids = Body.parse(await request.read()).texts("ids") or []
    tasks = request.app[ENGINE].store.by_ids(task_id.strip() for task_id in ids)
    return json_response([task.to_json() for task in tasks])


async def image_seed(request: web.Request) -> web.StreamResponse:
    answer = request.app[ENGINE].image_seed(request.match_info["id"])
    return json_response(answer.to_json())


async def cancel(request: web.Request) -> web.StreamResponse:
    answer = request.app[ENGINE].cancel(request.match_info["id"])
    return json_response(answer.to_json())


NOT_IN_OPEN_SOURCE = frozenset(
    {
        "submit/action",
        "submit/modal",
        "submit/shorten",
        "submit/upload-discord-images",
        "insight-face/swap",
        "task/image-seed",
        "task/cancel",
        "submit/video",
        "submit/edits",
        "submit/edit",
        "submit/retexture",
    }
)
NOT_IN_PLUS = frozenset({"submit/edits", "submit/edit", "submit/retexture"})
NOT_IN_TRUEAI = frozenset({"submit/change", "submit/simple-change"})


def add_mj_routes(app: web.Application, flavour: str) -> None:
    """The routes ``flavour`` offers, under every prefix it serves."""
    missing = {
        "open-source": NOT_IN_OPEN_SOURCE,
        "plus": NOT_IN_PLUS,
        "trueai": NOT_IN_TRUEAI,
    }[flavour]
    prefixes = {"/mj": None} if flavour == "open-source" else PREFIXES

    def offers(name: str) -> bool:
        return name not in missing

    for prefix, mode in prefixes.items():
        for name, handler in SUBMIT_HANDLERS.items():
            if offers(name):
                route = guarded(name, submit_route(handler, mode))
                app.router.add_post(f"{prefix}/{name}", route)
        app.router.add_get(f"{prefix}/task/{{id}}/fetch", guarded("task/fetch", fetch))
        app.router.add_get(f"{prefix}/task/list", guarded("task/list", task_list))
        app.router.add_post(
            f"{prefix}/task/list-by-condition",
            guarded("task/list-by-condition", list_by_condition),
        )
        if offers("task/image-seed"):
            app.router.add_get(
                f"{prefix}/task/{{id}}/image-seed", guarded("task/image-seed", image_seed)
            )
        if offers("task/cancel"):
            app.router.add_post(f"{prefix}/task/{{id}}/cancel", guarded("task/cancel", cancel))
