"""``POST /upstream/callbacks/{token}/{task_id}``: an upstream's task object, pushed on a change.

No API key: the channel's callback token in the path is the credential (404/21 when unknown).
The answer is 200 with ``{"outcome": "applied" | "stale" | "claimed" | "orphan"}``; upstreams
ignore it.
"""

from __future__ import annotations

from typing import Any

from litestar import post
from litestar.params import FromPath

from gateway.api.mj import AnyRequest, Svc
from gateway.errors import PayloadTooLarge
from gateway.tasks.callbacks import CALLBACK_PATH

MAX_CALLBACK_BYTES = 1024 * 1024


@post(f"{CALLBACK_PATH}/{{token:str}}/{{task_id:int}}", status_code=200)
async def upstream_callback(
    request: AnyRequest, services: Svc, token: FromPath[str], task_id: FromPath[int]
) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_CALLBACK_BYTES:
        raise PayloadTooLarge(f"a callback is at most {MAX_CALLBACK_BYTES} bytes")
    return {"outcome": (await services.callbacks.receive(token, task_id, raw)).value}
