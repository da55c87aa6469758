"""HTTP plumbing shared by the route modules: the ``mj-api-secret`` check, request counting,
JSON answers, Spring-style 400s, and the transport-level answers of submit faults."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.simulator.engine import Engine
from gateway.simulator.faults import SubmitFault
from gateway.simulator.protocol import dumps, spring_error_body
from gateway.simulator.validation import BadRequest

SECRET_HEADER = "mj-api-secret"  # noqa: S105 - the header name, not a secret
ENGINE = web.AppKey("engine", Engine)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTML_500 = (
    "<html><body><h1>Whitelabel Error Page</h1><p>There was an unexpected error "
    "(type=Internal Server Error, status=500).</p></body></html>"
)
_HTML_NOT_JSON = "<html><head><title>Bad Gateway</title></head><body>upstream hiccup</body></html>"


def json_response(value: object, status: int = 200) -> web.Response:
    return web.Response(
        body=dumps(value), status=status, content_type="application/json", charset="utf-8"
    )


def empty_response(status: int = 200) -> web.Response:
    return web.Response(status=status)


def guarded(name: str, handler: Handler) -> Handler:
    """``handler`` behind the secret check, counted under ``name`` in /sim/stats, with unbindable
    bodies answered 400 the way Spring does."""

    async def route(request: web.Request) -> web.StreamResponse:
        engine = request.app[ENGINE]
        engine.requests[name] += 1
        if not secret_ok(engine, request):
            return empty_response(401)
        try:
            return await handler(request)
        except BadRequest:
            return json_response(spring_error_body(400, "Bad Request", request.path), 400)

    return route


def secret_ok(engine: Engine, request: web.Request) -> bool:
    secret = engine.settings.secret
    if secret is None:
        return True
    sent = request.headers.get(SECRET_HEADER, "")
    return hmac.compare_digest(sent.encode(), secret.get_secret_value().encode())


def transport_fault(request: web.Request, fault: SubmitFault) -> web.StreamResponse | None:
    """The answer of a fault that breaks HTTP itself, or None for a fault answered in JSON.
    A dropped connection is aborted at once; the response returned for it is never sent."""
    if fault is SubmitFault.HTTP_401:
        return empty_response(401)
    if fault is SubmitFault.HTTP_500:
        return web.Response(status=500, text=_HTML_500, content_type="text/html")
    if fault is SubmitFault.NOT_JSON:
        return web.Response(status=200, text=_HTML_NOT_JSON, content_type="text/html")
    if fault is SubmitFault.DROP_CONNECTION:
        if request.transport is not None:
            request.transport.abort()
        return empty_response(500)
    return None
