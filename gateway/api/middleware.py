"""Per-request plumbing below the routes: a request id on every log line, one summary line,
the HTTP metrics, the gateway's own share of the time, and the caller's rate-limit headers.

The id comes from the client's ``X-Request-Id`` when it sent a sane one, else it is generated;
it is echoed in the response's ``X-Request-Id``. ``X-Gateway-Overhead-Ms`` is the time to the
response less the time spent waiting on upstreams. A request whose caller has a per-minute limit
leaves its ``RequestRate`` in the connection state under ``RATE_LIMIT_STATE``, and its response,
whatever the status, carries the ``X-RateLimit-*`` headers of it.
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from gateway import activity, metrics
from gateway.auth.limits import RequestRate
from gateway.console.accounts import INVITATION_PATH
from gateway.logging import bind_request_id
from gateway.tasks.callbacks import CALLBACK_PATH

log = structlog.get_logger("gateway.request")
_log_level = logging.getLogger("gateway.request")  # asked before a line is built at all
# Request ids need only differ, not be secret: seeded from the OS once per process, then drawn
# without the system call a secrets draw makes every time.
_ids = random.Random()  # noqa: S311 - not used for anything secret
RATE_LIMIT_STATE = "gateway_request_rate"
_SANE_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


def _request_id(scope: Scope) -> bytes:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _SANE_ID.match(value):
            return bytes(value)
    return b"%016x" % _ids.getrandbits(64)


def loggable_path(path: str) -> str:
    """The path without the secrets some paths carry (a channel's callback token, a console
    invitation's token)."""
    for secret_path in (CALLBACK_PATH, INVITATION_PATH.rstrip("/")):
        if path.startswith(secret_path + "/"):
            token_and_rest = path[len(secret_path) + 1 :]
            _token, _sep, rest = token_and_rest.partition("/")
            return f"{secret_path}/***/{rest}"
    return path


def request_log_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = _request_id(scope)
        bind_request_id(request_id.decode())
        started = time.perf_counter()
        status = 500
        overhead_s = 0.0

        with metrics.request_upstream_time() as upstream_s:

            async def send_with_id(message: Message) -> None:
                nonlocal status, overhead_s
                if message["type"] == "http.response.start":
                    status = message["status"]
                    overhead_s = max(0.0, time.perf_counter() - started - sum(upstream_s))
                    headers: list[Any] = list(message.get("headers", []))
                    headers.append((b"x-request-id", request_id))
                    headers.append((b"x-gateway-overhead-ms", f"{overhead_s * 1000:.1f}".encode()))
                    rate: RequestRate | None = scope.get("state", {}).get(RATE_LIMIT_STATE)
                    if rate is not None:
                        headers += [
                            (k.lower().encode(), v.encode()) for k, v in rate.headers().items()
                        ]
                    message = {**message, "headers": headers}
                await send(message)

            try:
                await app(scope, receive, send_with_id)
            finally:
                duration_s = time.perf_counter() - started
                route = scope.get("path_template") or "unmatched"
                metrics.observe_request(route, scope["method"], status, duration_s, overhead_s)
                activity.count(status)
                if _log_level.isEnabledFor(logging.INFO):
                    log.info(
                        "request",
                        method=scope["method"],
                        path=loggable_path(scope["path"]),
                        status=status,
                        duration_ms=round(duration_s * 1000, 2),
                    )

    return middleware
