"""``GET /mj/image/{id}`` and ``/mj/image/{id}/{part}``: a task's image, or one single image or
video of its result, streamed from its upstream; the signature is the key. Byte ranges are passed
on, so a browser can seek in a video."""

from __future__ import annotations

from litestar import get
from litestar.params import FromPath, FromQuery, SkipValidation
from litestar.response import Stream

from gateway.api.dependencies import AnyRequest
from gateway.api.openapi import DOC_KEY, Doc
from gateway.container import Services
from gateway.upstream.client import MediaStream

_DOC = {DOC_KEY: Doc(None, (404, 502, 504), key=False)}


def _answer(media: MediaStream) -> Stream:
    return Stream(
        media.chunks,
        status_code=media.status,
        media_type=media.content_type,
        headers={**media.headers, "Cache-Control": "private, max-age=3600"},
    )


@get("/image/{task_id:str}", opt=_DOC)
async def image(
    request: AnyRequest,
    task_id: FromPath[str],
    exp: FromQuery[int],
    sig: FromQuery[str],
    services: SkipValidation[Services],
) -> Stream:
    byte_range = request.headers.get("range")
    return _answer(await services.tasks.open_media(task_id, exp, sig, None, byte_range))


@get("/image/{task_id:str}/{part:str}", opt=_DOC)
async def image_part(
    request: AnyRequest,
    task_id: FromPath[str],
    part: FromPath[str],
    exp: FromQuery[int],
    sig: FromQuery[str],
    services: SkipValidation[Services],
) -> Stream:
    byte_range = request.headers.get("range")
    return _answer(await services.tasks.open_media(task_id, exp, sig, part, byte_range))
