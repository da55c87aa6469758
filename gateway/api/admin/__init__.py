"""``/api/admin``: the operator's API, behind admin tokens (never client keys).

Users, keys, channels, prices and groups, money, tasks, the ledger and reconciliation. Bodies
are typed (and so described in the OpenAPI document at ``/schema/openapi.json``); unknown
fields are refused, since a typo must not be silently ignored where money moves. Answers are
JSON objects with camelCase keys; errors have the ``/mj`` shape ``{code, description, result:
null}``: 400/21 bad input, 401/24 no or wrong token, 404/21 unknown id. No answer carries a
channel secret, a key's hash or a callback token; an issued key is shown once, when issued.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import asyncpg
from litestar import Request, Response, Router
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from gateway.api.admin import channels, money, records, users
from gateway.api.errors import render_api_error
from gateway.container import Services
from gateway.errors import BadRequest, Unauthorized


def require_admin_token(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """An ``Authorization: Bearer <token>`` naming one of the configured admin tokens; compared
    in constant time, as digests, so neither a token's bytes nor its length leak."""
    services: Services = connection.app.state.services
    scheme, _sep, token = (connection.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("an admin token is required")
    offered = hashlib.sha256(token.encode()).digest()
    tokens = services.settings.admin.tokens
    known = [hashlib.sha256(t.get_secret_value().encode()).digest() for t in tokens]
    if not any([hmac.compare_digest(offered, digest) for digest in known]):  # noqa: C419 - all compared
        raise Unauthorized("invalid admin token")


def render_unstorable(request: Request[Any, Any, Any], _: asyncpg.DataError) -> Response[Any]:
    """A value the database refused to store or compare (an id past 64 bits, a NUL in text):
    the operator's input, so 400/21, not a 500."""
    return render_api_error(request, BadRequest("invalid request: a value cannot be stored"))


def answer_options(request: Request[Any, Any, Any]) -> Response[None] | None:
    """OPTIONS names every method of its path. (Litestar's own answer lists the methods of
    the handler registered first for a path, here GET alone where a POST or PATCH follows.)"""
    if request.method != "OPTIONS":
        return None
    methods = {
        method
        for path in request.route_handler.paths
        for method in request.app.route_handler_method_map.get(path, {})
    }
    return Response(None, status_code=204, headers={"Allow": ", ".join(sorted(methods))})


def admin_router() -> Router:
    return Router(
        path="/api/admin",
        route_handlers=[*users.ROUTES, *money.ROUTES, *channels.ROUTES, *records.ROUTES],
        guards=[require_admin_token],
        exception_handlers={asyncpg.DataError: render_unstorable},
        before_request=answer_options,
        tags=["admin"],
    )
