"""``POST /upstream/callbacks/{token}/{task_id}``: an upstream's task object, pushed on a change.

No API key: the channel's callback token in the path is the credential (404/21 when unknown),
checked before any of the body is read; then at most ``MAX_CALLBACK_BYTES`` are (413/21). The
answer is 200 with ``{"outcome": "applied" | "stale" | "claimed" | "orphan"}``; upstreams ignore
it. A task object the gateway will not apply is 400/21, saying why.
"""

from __future__ import annotations

from typing import Any

from litestar import post
from litestar.params import FromPath

from gateway.api.dependencies import AnyRequest, Svc
from gateway.tasks.callbacks import CALLBACK_PATH

MAX_CALLBACK_BYTES = 1024 * 1024


@post(
    f"{CALLBACK_PATH}/{{token:str}}/{{task_id:str}}",
    status_code=200,
    request_max_body_size=MAX_CALLBACK_BYTES,
    include_in_schema=False,
)
async def upstream_callback(
    request: AnyRequest, services: Svc, token: FromPath[str], task_id: FromPath[str]
) -> dict[str, Any]:
    channel = await services.callbacks.channel(token)
    outcome = await services.callbacks.receive(channel, task_id, await request.body())
    return {"outcome": outcome.value}
