"""``GET /mj/image/{id}`` and ``/mj/image/{id}/{part}``: a task's image, or one single image or
video of its result, and with ``size=thumb`` its thumbnail; the signature is the key. The stored
copy is served when there is one (``ETag``, ``Last-Modified``, byte ranges, cached for good),
else the upstream's is streamed, byte ranges passed on."""

from __future__ import annotations

from typing import Literal

from litestar import Response, get
from litestar.params import FromPath, FromQuery, SkipValidation
from litestar.response import Stream

from gateway.api.dependencies import AnyRequest
from gateway.api.openapi import DOC_KEY, Doc
from gateway.container import Services

_DOC = {DOC_KEY: Doc(None, (404, 502, 504), key=False)}
_STREAMED_CACHE_CONTROL = "private, max-age=3600"
WHOLE_BODY_BYTES = 1024 * 1024
Size = Literal["full", "thumb"]


async def _answer(
    request: AnyRequest,
    services: Services,
    task_id: str,
    exp: int,
    sig: str,
    part: str | None,
    size: Size,
) -> Response[bytes] | Stream:
    media = await services.tasks.open_media(
        task_id,
        exp,
        sig,
        part,
        thumb=size == "thumb",
        byte_range=request.headers.get("range"),
        if_none_match=request.headers.get("if-none-match"),
    )
    if media.status in (304, 416):  # no body, and nothing for a cache to keep of a 416
        return Response(b"", status_code=media.status, headers=media.headers)
    headers = {"Cache-Control": _STREAMED_CACHE_CONTROL, **media.headers}
    length = media.headers.get("Content-Length", "")
    if length.isdigit() and int(length) <= WHOLE_BODY_BYTES:  # one send beats a stream's several
        body = b"".join([chunk async for chunk in media.chunks])
        headers.pop("Content-Length")
        return Response(
            body, status_code=media.status, media_type=media.content_type, headers=headers
        )
    return Stream(
        media.chunks, status_code=media.status, media_type=media.content_type, headers=headers
    )


@get("/image/{task_id:str}", opt=_DOC)
async def image(
    request: AnyRequest,
    task_id: FromPath[str],
    exp: FromQuery[int],
    sig: FromQuery[str],
    services: SkipValidation[Services],
    size: FromQuery[Size] = "full",
) -> Response[bytes] | Stream:
    return await _answer(request, services, task_id, exp, sig, None, size)


@get("/image/{task_id:str}/{part:str}", opt=_DOC)
async def image_part(
    request: AnyRequest,
    task_id: FromPath[str],
    part: FromPath[str],
    exp: FromQuery[int],
    sig: FromQuery[str],
    services: SkipValidation[Services],
    size: FromQuery[Size] = "full",
) -> Response[bytes] | Stream:
    return await _answer(request, services, task_id, exp, sig, part, size)
