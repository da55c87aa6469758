"""What every console page shares: who is signed in (guards), CSRF, the session cookie, the
security headers, rendering, and errors as pages.

Guards decide on the server: ``signed_in`` loads the session and its user for every page behind
it, and refuses a POST whose CSRF token (form field ``csrf`` or header ``X-CSRF-Token``) is not
the session's; ``operator_only`` answers 403 to anyone not marked operator. Hiding a link is
never the check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import SkipValidation
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from gateway.container import Services
from gateway.errors import ApiError, BadRequest, Forbidden, NotFound
from gateway.storage import console as console_store
from gateway.storage.console import ConsoleUser

from .forms import is_urlencoded
from .sessions import Session

AnyRequest = Request[Any, Any, Any]
ADMIN = "/console/admin"  # where the operator's pages are
COOKIE = "gw_console"
LOGIN_COOKIE = "gw_console_login"  # the sign-in form's CSRF token (double submit)
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:;"
        " media-src 'self' https:; connect-src 'self'; object-src 'none'; base-uri 'none';"
        " frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Visitor:
    user: ConsoleUser
    session: Session


# The signed-in visitor as a handler's parameter (a dependency the guard already checked).
SignedIn = SkipValidation[Visitor]


class SignInNeeded(Exception):
    """No live session: the page sends the browser to the sign-in form."""


def services_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    services: Services = connection.app.state.services
    return services


async def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    services = services_of(connection)
    session = await services.sessions.load(connection.cookies.get(COOKIE))
    if session is None:
        raise SignInNeeded()
    user = await console_store.console_user(services.pool, session.user_id)
    if user is None or not user.enabled:
        await services.sessions.end(session)
        raise SignInNeeded()
    if connection.scope.get("method") not in SAFE_METHODS:
        offered = connection.headers.get("x-csrf-token")
        if offered is None and isinstance(connection, Request) and is_urlencoded(connection):
            offered = (await connection.form()).get("csrf")
        if not session.csrf_matches(offered):
            raise Forbidden("this form has expired: reload the page and send it again")
    connection.state.visitor = Visitor(user, session)


async def operator_only(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    visitor: Visitor = connection.state.visitor
    if not visitor.user.operator:
        raise Forbidden("this page is for operators")


def provide_visitor(request: AnyRequest) -> Visitor:
    visitor: Visitor = request.state.visitor
    return visitor


def client_address(request: AnyRequest) -> str:
    host = request.client.host if request.client else ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return "unknown"


def secure_cookies(request: AnyRequest) -> bool:
    """Cookies are Secure when the page is served over HTTPS (directly, or behind a proxy that
    says so, or at an https public base URL)."""
    public = services_of(request).settings.server.public_base_url or ""
    return (
        request.url.scheme == "https"
        or request.headers.get("x-forwarded-proto", "").lower() == "https"
        or public.startswith("https://")
    )


def set_session_cookie(request: AnyRequest, response: Response[Any], token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        path="/console",
        max_age=services_of(request).sessions.max_s,
        httponly=True,
        secure=secure_cookies(request),
        samesite="lax",
    )


def base_url(request: AnyRequest) -> str:
    """Where clients reach this gateway: the configured public base URL, else this request's."""
    public = services_of(request).settings.server.public_base_url
    return (public or str(request.base_url)).rstrip("/")


async def page(
    request: AnyRequest, template: str, visitor: Visitor | None = None, **context: Any
) -> Template:
    """A whole page, with the signed-in user, their CSRF token and any message waiting."""
    said = None
    if visitor is not None:
        said = await services_of(request).sessions.said(visitor.session)
    return Template(
        template_name=template,
        context={
            "visitor": visitor,
            "csrf": visitor.session.csrf if visitor else None,
            "said": said,
            "path": request.url.path,
            **context,
        },
    )


def fragment(template: str, **context: Any) -> Template:
    """A piece of a page that the page's script swaps in (a task card, say)."""
    return Template(template_name=template, context=context)


@dataclass(frozen=True, slots=True)
class Next:
    """What a form did, when that decides the next page (the record it made, say)."""

    to: str
    message: str | None = None


async def act(
    request: AnyRequest, visitor: Visitor, to: str, action: Awaitable[str | Next | None]
) -> Redirect:
    """Do a form's action and go to ``to`` (or where its ``Next`` says), with its message; or,
    when the input is refused, to ``to`` with the reason. A NotFound stays a 404: it may be
    someone else's record."""
    sessions = services_of(request).sessions
    try:
        outcome = await action
    except NotFound:
        raise
    except ApiError as exc:
        await sessions.say(visitor.session, "error", exc.description)
        return Redirect(path=to, status_code=303)
    if isinstance(outcome, Next):
        to, outcome = outcome.to, outcome.message
    if outcome:
        await sessions.say(visitor.session, "ok", outcome)
    return Redirect(path=to, status_code=303)


def to_sign_in(request: AnyRequest, _: SignInNeeded) -> Response[Any]:
    if request.headers.get("x-console-fragment"):
        return Response("", status_code=401)  # the page's script reloads the page
    target = request.url.path if request.method == "GET" else "/console"
    return Redirect(path=f"/console/login?next={quote(target)}", status_code=303)


def error_page(request: AnyRequest, exc: ApiError) -> Response[Any]:
    if request.headers.get("x-console-fragment"):
        return Response(exc.description, status_code=exc.http_status, media_type="text/plain")
    return Template(
        template_name="error.html",
        context={
            "visitor": request.state.get("visitor"),
            "csrf": None,
            "said": None,
            "path": request.url.path,
            "status": exc.http_status,
            "message": exc.description,
        },
        status_code=exc.http_status,
    )


def unstorable_page(request: AnyRequest, _: asyncpg.DataError) -> Response[Any]:
    """A value the database cannot hold (an id past 64 bits, say): the visitor's input."""
    return error_page(request, BadRequest("a value in this request cannot be stored"))


def add_security_headers(response: Response[Any]) -> Response[Any]:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_filters)


def _filters(engine: JinjaTemplateEngine) -> None:
    env = engine.engine
    env.filters["units"] = lambda n: f"{n:,}" if n is not None else "∞"
    env.filters["when"] = _when
    env.filters["ms"] = lambda ms: _when(datetime.fromtimestamp(ms / 1000, UTC)) if ms else ""


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""
