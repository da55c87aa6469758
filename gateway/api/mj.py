"""The client ``/mj`` API: parse, call one service method, shape the answer.

The same handlers serve ``/mj``, ``/mj-fast/mj``, ``/mj-relax/mj`` and ``/mj-turbo/mj``; the
prefix's mode comes through the router's ``opt``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from litestar import Response, Router, get, post
from litestar.di import Provide
from litestar.params import FromPath
from litestar.response.base import ASGIResponse

from gateway import metrics
from gateway.api import submit_orders
from gateway.api.dependencies import AnyRequest, Caller, Svc, provide_principal, task_id_of
from gateway.api.errors import error_body
from gateway.api.image import image, image_part
from gateway.api.openapi import (
    DOC_KEY,
    READ_ERRORS,
    SUBMIT_ERRORS,
    Doc,
    SubmitAnswer,
    TaskObject,
    TextAnswer,
    UploadAnswer,
)
from gateway.api.schemas import (
    ActionBody,
    BlendBody,
    ChangeBody,
    DescribeBody,
    EditBody,
    ImagineBody,
    ListByConditionBody,
    ModalBody,
    RequestBody,
    ShortenBody,
    SimpleChangeBody,
    SwapFaceBody,
    UploadBody,
    VideoBody,
)
from gateway.api.validation import decode_json, validate
from gateway.container import Services
from gateway.domain import Principal
from gateway.tasks.idempotency import fingerprint
from gateway.tasks.orders import SubmitOrder, Submitted
from gateway.tasks.views import client_properties

Body = TypeVar("Body", bound=RequestBody)
_VALIDATE_IN_THREAD_BYTES = 256 * 1024


async def _parse(kind: type[Body], request: AnyRequest, services: Services) -> Body:
    raw = await request.body()
    body = decode_json(kind, raw, services.settings.relay.max_body_bytes)
    if len(raw) > _VALIDATE_IN_THREAD_BYTES:
        return await anyio.to_thread.run_sync(validate, body)
    return validate(body)


def _submit_doc(body: type[RequestBody]) -> dict[str, Doc]:
    return {DOC_KEY: Doc(SubmitAnswer, SUBMIT_ERRORS, body)}


def _path_mode(request: AnyRequest) -> str | None:
    mode: str | None = request.route_handler.opt.get("path_mode")
    return mode


async def _once(
    request: AnyRequest,
    services: Services,
    principal: Principal,
    produce: Callable[[], Awaitable[dict[str, Any]]],
) -> Response[Any]:
    """Answer a submit, once per ``Idempotency-Key`` when the client sends one."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return Response(await produce())
    answer = await services.idempotency.once(
        principal.key_id,
        key,
        fingerprint(request.method, request.url.path, await request.body()),
        produce,
        lambda exc: error_body(exc.code, exc.description, exc.properties),
    )
    headers = None
    if answer.replayed:
        metrics.IDEMPOTENT_REPLAYS.inc()
        headers = {"Idempotent-Replayed": "true"}
    return Response(answer.body, status_code=answer.status, headers=headers)


async def _submit(
    request: AnyRequest, services: Services, principal: Principal, order: SubmitOrder
) -> Response[Any]:
    async def produce() -> dict[str, Any]:
        submitted: Submitted = await services.submitter.submit(principal, order)
        return {
            "code": submitted.code,
            "description": submitted.description,
            "properties": client_properties(submitted.properties),
            "result": str(submitted.task_id),
        }

    return await _once(request, services, principal, produce)


@post("/submit/imagine", status_code=200, opt=_submit_doc(ImagineBody))
async def submit_imagine(request: AnyRequest, services: Svc, principal: Caller) -> Response[Any]:
    body = await _parse(ImagineBody, request, services)
    return await _submit(
        request, services, principal, submit_orders.imagine(body, _path_mode(request))
    )


@post("/submit/blend", status_code=200, opt=_submit_doc(BlendBody))
async def submit_blend(request: AnyRequest, services: Svc, principal: Caller) -> Response[Any]:
    body = await _parse(BlendBody, request, services)
    return await _submit(
        request, services, principal, submit_orders.blend(body, _path_mode(request))
    )


@post("/submit/describe", status_code=200, opt=_submit_doc(DescribeBody))
async def submit_describe(request: AnyRequest, services: Svc, principal: Caller) -> Response[Any]:
    body = await _parse(DescribeBody, request, services)
    return await _submit(
        request, services, principal, submit_orders.describe(body, _path_mode(request))
    )


@post("/submit/shorten", status_code=200, opt=_submit_doc(ShortenBody))
async def submit_shorten(request: AnyRequest, services: Svc, principal: Caller) -> Response[Any]:
    body = await _parse(ShortenBody, request, services)
    return await _submit(
        request, services, principal, submit_orders.shorten(body, _path_mode(request))
    )


@post("/submit/action", status_code=200, opt=_submit_doc(ActionBody))
async def submit_action(request: AnyRequest, services: Svc, principal: Caller) -> Response[Any]:
    body = await _parse(ActionBody, request, services)
    return await _submit(request, services, principal, submit_orders.action(body))


@post("/submit/modal", status_code=200, opt=_submit_doc(ModalBody))
async def submit_modal(request: AnyRequest, services: Svc, principal: Caller) -> Response[Any]:
    body = await _parse(ModalBody, request, services)
    return await _submit(request, services, principal, submit_orders.modal(body))


@post("/submit/change", status_code=200, opt=_submit_doc(ChangeBody))
async def submit_change(request: AnyRequest, services: Svc, principal: Caller) -> Response[Any]:
    body = await _parse(ChangeBody, request, services)
    return await _submit(request, services, principal, submit_orders.change(body))


@post("/submit/simple-change", status_code=200, opt=_submit_doc(SimpleChangeBody))
async def submit_simple_change(
    request: AnyRequest, services: Svc, principal: Caller
) -> Response[Any]:
    body = await _parse(SimpleChangeBody, request, services)
    return await _submit(request, services, principal, submit_orders.simple_change(body))


@post("/insight-face/swap", status_code=200, opt=_submit_doc(SwapFaceBody))
async def swap_face(request: AnyRequest, services: Svc, principal: Caller) -> Response[Any]:
    body = await _parse(SwapFaceBody, request, services)
    return await _submit(
        request, services, principal, submit_orders.swap_face(body, _path_mode(request))
    )


@post("/submit/video", status_code=200, opt=_submit_doc(VideoBody))
async def submit_video(request: AnyRequest, services: Svc, principal: Caller) -> Response[Any]:
    body = await _parse(VideoBody, request, services)
    return await _submit(
        request, services, principal, submit_orders.video(body, _path_mode(request))
    )


@post(["/submit/edits", "/submit/edit"], status_code=200, opt=_submit_doc(EditBody))
async def submit_edits(request: AnyRequest, services: Svc, principal: Caller) -> Response[Any]:
    body = await _parse(EditBody, request, services)
    order = submit_orders.edit("edits", "edit", body, _path_mode(request))
    return await _submit(request, services, principal, order)


@post("/submit/retexture", status_code=200, opt=_submit_doc(EditBody))
async def submit_retexture(request: AnyRequest, services: Svc, principal: Caller) -> Response[Any]:
    body = await _parse(EditBody, request, services)
    order = submit_orders.edit("retexture", "retexture", body, _path_mode(request))
    return await _submit(request, services, principal, order)


@post(
    "/submit/upload-discord-images",
    status_code=200,
    opt={DOC_KEY: Doc(UploadAnswer, SUBMIT_ERRORS, UploadBody)},
)
async def upload_images(request: AnyRequest, services: Svc, principal: Caller) -> Response[Any]:
    body = await _parse(UploadBody, request, services)
    order = submit_orders.upload(body, _path_mode(request))

    async def produce() -> dict[str, Any]:
        urls = await services.submitter.upload(principal, order)
        return {"code": 1, "description": "success", "result": urls}

    return await _once(request, services, principal, produce)


@get("/task/{task_id:str}/fetch", opt={DOC_KEY: Doc(TaskObject, READ_ERRORS)})
async def fetch_task(task_id: FromPath[str], services: Svc, principal: Caller) -> ASGIResponse:
    """The busiest route, mostly answered before the routing (``gateway.api.fast_path``); this
    handler documents it and answers what that path leaves to the framework."""
    body = await services.tasks.fetch(principal, task_id_of(task_id))
    return ASGIResponse(body=body, media_type="application/json")


@post(
    "/task/list-by-condition",
    status_code=200,
    opt={DOC_KEY: Doc(list[TaskObject], (400, 413, *READ_ERRORS), ListByConditionBody)},
)
async def list_by_condition(
    request: AnyRequest, services: Svc, principal: Caller
) -> list[dict[str, Any]]:
    body = await _parse(ListByConditionBody, request, services)
    return await services.tasks.by_ids(principal, body.ids)


@get("/task/list", opt={DOC_KEY: Doc(list[TaskObject], READ_ERRORS)})
async def list_tasks(services: Svc, principal: Caller) -> list[dict[str, Any]]:
    return await services.tasks.recent(principal)


@post(
    "/task/{task_id:str}/cancel",
    status_code=200,
    opt={DOC_KEY: Doc(TextAnswer, (400, *READ_ERRORS))},
)
async def cancel_task(task_id: FromPath[str], services: Svc, principal: Caller) -> dict[str, Any]:
    await services.cancels.cancel(principal, task_id_of(task_id))
    return {"code": 1, "description": "cancelled", "result": task_id}


@get(
    "/task/{task_id:str}/image-seed",
    opt={DOC_KEY: Doc(TextAnswer, (400, 502, 504, *READ_ERRORS))},
)
async def image_seed(task_id: FromPath[str], services: Svc, principal: Caller) -> dict[str, Any]:
    seed = await services.tasks.image_seed(principal, task_id_of(task_id))
    return {"code": 1, "description": "success", "result": seed}


_AUTHENTICATED = [
    submit_imagine,
    submit_blend,
    submit_describe,
    submit_shorten,
    submit_action,
    submit_modal,
    submit_change,
    submit_simple_change,
    swap_face,
    submit_video,
    submit_edits,
    submit_retexture,
    upload_images,
    fetch_task,
    cancel_task,
    list_by_condition,
    list_tasks,
    image_seed,
]

PATH_MODES = {"/mj": None, "/mj-fast/mj": "FAST", "/mj-relax/mj": "RELAX", "/mj-turbo/mj": "TURBO"}


def mj_routers() -> list[Router]:
    """One router per path prefix, the same handlers under each."""
    return [
        Router(
            path=prefix,
            route_handlers=[
                Router(
                    path="/",
                    route_handlers=_AUTHENTICATED,
                    dependencies={"principal": Provide(provide_principal)},
                ),
                image,
                image_part,
            ],
            opt={"path_mode": mode},
        )
        for prefix, mode in PATH_MODES.items()
    ]
