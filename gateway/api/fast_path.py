"""The busiest route, answered before the framework routes it: ``GET <prefix>/task/{id}/fetch``.

Clients poll, so a relay sees ten or more fetches for every submit. The work of a fetch is small
(authenticate, read the task, send its JSON) and Litestar's routing, dependency injection and
response building cost more than that work: the bench answered 7,700 fetches/s through them,
17,900/s with neither them nor the request log, and 12,400/s through this path and the log (2
workers, 64 connections; the simulator alone: 16,000-18,000). This path does the same work with the
same functions as the Litestar route ``gateway.api.mj.fetch_task``: the caller is authenticated
and counted as there (``gateway.api.dependencies.authenticate``), the answer is
``TaskReader.fetch``'s, and an error is rendered by the same exception handlers
(``gateway.api.errors``), so its status, body and headers are the same. The request log around
both (``gateway.api.middleware``) adds the request id, the rate-limit headers and the metrics.

What it does not take goes on to Litestar: any other method or path, a path the framework would
first normalise (a trailing slash), a Host header the framework refuses, and a request with an
``Origin`` header when CORS is on (its headers are the framework's to add).
"""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.types import ASGIApp, HTTPResponseStartEvent, Receive, Scope, Send

from gateway.api.dependencies import authenticate, task_id_of
from gateway.api.errors import exception_response
from gateway.api.mj import PATH_MODES
from gateway.api.requests import GatewayRequest
from gateway.container import Services

FETCH_PATH = re.compile(
    "(?P<prefix>" + "|".join(re.escape(prefix) for prefix in PATH_MODES) + ")"
    r"/task/(?P<task_id>[^/]+)/fetch"
)
# The route's template under each prefix, as Litestar names it in the request metrics and logs.
FETCH_TEMPLATES = {prefix: f"{prefix}/task/{{task_id}}/fetch" for prefix in PATH_MODES}
# The Host header values the framework takes (RFC 3986's reg-name, IP literals and a port).
_SANE_HOST = re.compile(rb"[0-9A-Za-z!$&'()*+,;=\-._~:\[\]@%]*")
_JSON_HEADERS = [(b"content-type", b"application/json")]


def fetch_first(app: Litestar, framework: ASGIApp, *, cors: bool) -> ASGIApp:
    """An HTTP ASGI app that answers task fetches itself and passes the rest to ``framework``
    (``app``'s own entry point); ``cors``: whether the app answers cross-origin requests."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        match = FETCH_PATH.fullmatch(scope["path"]) if scope.get("method") == "GET" else None
        headers = _fetch_headers(scope, cors=cors) if match is not None else None
        if match is None or headers is None:
            await framework(scope, receive, send)
            return
        scope.setdefault("state", {})
        scope["path_template"] = FETCH_TEMPLATES[match["prefix"]]
        services: Services = app.state.services
        client = scope.get("client")
        try:
            principal = await authenticate(
                services,
                scope,
                headers.get(b"authorization"),
                headers.get(b"mj-api-secret"),
                client[0] if client else None,
            )
            body = await services.tasks.fetch(principal, task_id_of(match["task_id"]))
        except Exception as exc:  # rendered as the framework renders it
            scope["app"] = scope["litestar_app"] = app  # what its request object reads
            response = exception_response(GatewayRequest(scope), exc)
            await response(scope, receive, send)
            return
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_JSON_HEADERS, (b"content-length", b"%d" % len(body))],
        }
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return serve


def _fetch_headers(scope: Scope, *, cors: bool) -> dict[bytes, str] | None:
    """The key headers of a fetch this path takes (the first of each name, as the framework
    reads them); None for one it leaves to the framework."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in (b"authorization", b"mj-api-secret"):
            if name not in found:
                found[name] = value.decode("latin-1")
        elif name == b"host":
            if _SANE_HOST.fullmatch(value) is None:
                return None
        elif name == b"origin" and cors:
            return None
    return found
