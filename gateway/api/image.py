"""``GET /mj/image/{id}``: a task's image, streamed from its upstream; the signature is the key."""

from __future__ import annotations

from litestar import get
from litestar.params import FromPath, FromQuery, SkipValidation
from litestar.response import Stream

from gateway.api.openapi import DOC_KEY, Doc
from gateway.container import Services


@get("/image/{task_id:str}", opt={DOC_KEY: Doc(None, (404, 502, 504), key=False)})
async def image(
    task_id: FromPath[str],
    exp: FromQuery[int],
    sig: FromQuery[str],
    services: SkipValidation[Services],
) -> Stream:
    content_type, chunks = await services.tasks.open_image(task_id, exp, sig)
    return Stream(
        chunks, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"}
    )
