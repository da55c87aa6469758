"""Signing in and out, and taking an invitation: the console's only pages open to anyone.

The sign-in and invitation forms carry a CSRF token that is also in a short-lived cookie (a
double submit): a page elsewhere cannot sign a browser in to an account of its choosing.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from litestar import Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from gateway.api.dependencies import Svc
from gateway.container import Services
from gateway.errors import BadRequest, Forbidden, RateLimited, Unauthorized

from . import accounts
from .forms import read_form
from .web import (
    COOKIE,
    LOGIN_COOKIE,
    AnyRequest,
    SignedIn,
    client_address,
    page,
    secure_cookies,
    set_session_cookie,
)

LOGIN_FORM_S = 3600


def _next(target: str | None) -> str:
    """Where to go after signing in: a console page, nowhere else."""
    if target and target.startswith("/console") and "//" not in target and "\\" not in target:
        return target
    return "/console"


async def _form_page(
    request: AnyRequest, template: str, status: int = 200, **context: Any
) -> Template:
    """A form with a fresh double-submit token, in the page and in a cookie."""
    token = secrets.token_urlsafe(24)
    shown = await page(request, template, form_token=token, **context)
    shown.status_code = status
    shown.cookies.append(_login_cookie(request, token))
    return shown


def _login_cookie(request: AnyRequest, token: str) -> Cookie:
    return Cookie(
        key=LOGIN_COOKIE,
        value=token,
        path="/console",
        max_age=LOGIN_FORM_S,
        httponly=True,
        secure=secure_cookies(request),
        samesite="strict",
    )


async def _check_form_token(request: AnyRequest) -> None:
    cookie = request.cookies.get(LOGIN_COOKIE) or ""
    offered = (await read_form(request)).secret("csrf")
    if not cookie or not hmac.compare_digest(cookie.encode(), offered.encode()):
        raise Forbidden("this form has expired: reload the page and send it again")


async def _signed_in(request: AnyRequest, services: Services, user_id: int, to: str) -> Redirect:
    token, _session = await services.sessions.start(user_id)
    response = Redirect(path=to, status_code=303)
    set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return response


@get("/login")
async def login_form(
    request: AnyRequest, services: Svc, next: FromQuery[str | None] = None
) -> Response[Any]:
    if await services.sessions.load(request.cookies.get(COOKIE)) is not None:
        return Redirect(path=_next(next), status_code=303)
    return await _form_page(request, "login.html", next=_next(next))


@post("/login")
async def login(request: AnyRequest, services: Svc) -> Response[Any]:
    await _check_form_token(request)
    form = await read_form(request)
    name = form.text("name", "User name", max_length=200)
    target = _next(form.text("next", "next"))
    try:
        user_id = await accounts.sign_in(
            services.pool,
            services.sign_ins,
            name,
            form.secret("password"),
            client_address(request),
        )
    except (Unauthorized, RateLimited) as exc:
        return await _form_page(
            request, "login.html", exc.http_status, next=target, name=name, error=exc.description
        )
    return await _signed_in(request, services, user_id, target)


@post("/logout")
async def logout(services: Svc, visitor: SignedIn) -> Redirect:
    await services.sessions.end(visitor.session)
    response = Redirect(path="/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@get("/invite/{token:str}")
async def invitation(request: AnyRequest, services: Svc, token: FromPath[str]) -> Template:
    _user_id, name = await accounts.invited(services.pool, token)
    return await _form_page(request, "invite.html", name=name, token=token)


@post("/invite/{token:str}")
async def take_invitation(
    request: AnyRequest, services: Svc, token: FromPath[str]
) -> Response[Any]:
    await _check_form_token(request)
    form = await read_form(request)
    _user_id, name = await accounts.invited(services.pool, token)
    try:
        user_id = await accounts.accept_invitation(
            services.pool,
            services.sessions,
            token,
            form.secret("password"),
            form.secret("confirmation"),
        )
    except BadRequest as exc:
        return await _form_page(
            request, "invite.html", 400, name=name, token=token, error=exc.description
        )
    return await _signed_in(request, services, user_id, "/console")


PUBLIC = [login_form, login, invitation, take_invitation]
