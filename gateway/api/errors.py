"""Every error a client sees, in the one documented shape ``{code, description, result: null}``.

``ApiError`` subclasses carry their HTTP status and code; framework errors (unknown route, wrong
method, body too large) are mapped here too, and anything unexpected is a logged 500/23.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response.base import ASGIResponse

from gateway.api.middleware import loggable_path
from gateway.errors import ApiError, Unavailable
from gateway.storage.database import DATABASE_UNREACHABLE

log = structlog.get_logger(__name__)


def error_body(
    code: int, description: str, properties: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "description": description, "result": None}
    if properties:
        body["properties"] = properties
    return body


def render_api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[dict[str, Any]]:
    headers = dict(exc.headers or {})
    if exc.retry_after_s:
        headers["Retry-After"] = str(exc.retry_after_s)
    return Response(
        error_body(exc.code, exc.description, exc.properties),
        status_code=exc.http_status,
        headers=headers or None,
    )


def render_http_exception(
    _: Request[Any, Any, Any], exc: HTTPException
) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= 500:
        return Response(error_body(23, "internal error"), status_code=500)
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        problems = "; ".join(
            f"{item.get('message')} - at `{item.get('key')}`"
            for item in exc.extra
            if isinstance(item, dict)
        )
        return Response(error_body(21, f"invalid request: {problems}"), status_code=status)
    return Response(error_body(21, str(exc.detail)), status_code=status, headers=exc.headers)


def render_unreachable(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The database cannot be reached: nothing was held, so nothing went upstream."""
    log.warning("database_unreachable", path=loggable_path(request.url.path), error=repr(exc))
    return render_api_error(request, Unavailable("the service is unavailable; try again later"))


def render_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unexpected_error", path=loggable_path(request.url.path), error=repr(exc))
    return Response(error_body(23, "internal error"), status_code=500)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    ApiError: render_api_error,
    **dict.fromkeys(DATABASE_UNREACHABLE, render_unreachable),
    HTTPException: render_http_exception,
    Exception: render_unexpected,
}


def exception_response(request: Request[Any, Any, Any], exc: Exception) -> ASGIResponse:
    """The answer the app gives to ``exc``, for a route served outside the framework
    (``gateway.api.fast_path``): the handler of its nearest class, as the framework picks."""
    handler = next(EXCEPTION_HANDLERS[c] for c in type(exc).__mro__ if c in EXCEPTION_HANDLERS)
    response: Response[Any] = handler(request, exc)
    return response.to_asgi_response(app=None, request=request)
