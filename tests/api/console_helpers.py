"""Helpers of the web console tests: users who can sign in, signing in as a browser does, and
the CSRF token of a page.

A browser is an ``httpx.AsyncClient`` whose cookie jar holds its session: each user of a test
gets a client of their own (``browser``), since one jar holds one session.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from gateway import admin
from gateway.console import accounts
from gateway.console.web import COOKIE
from tests.conftest import Gateway

PASSWORD = "a-long-password-1"
_CSRF = re.compile(r'<input type="hidden" name="csrf" value="([^"]*)">')


def csrf_of(page: str) -> str:
    """The CSRF token in a page's forms (the first one: every form of a page has the same)."""
    found = _CSRF.search(page)
    assert found, "no CSRF field in the page"
    return html.unescape(found.group(1))


async def console_user(
    gateway: Gateway, name: str, *, operator: bool = False, balance_units: int = 0
) -> int:
    """A user with the password ``PASSWORD``, marked operator or not: their id."""
    pool = gateway.services.pool
    user_id = await admin.create_user(pool, name, balance_units)
    if operator:
        await admin.set_operator(pool, user_id, True)
    await accounts.set_password(pool, user_id, PASSWORD)
    return user_id


@asynccontextmanager
async def browser(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client of its own, for one more signed-in user (redirects not followed)."""
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30.0) as http:
        yield http


async def sign_in(http: httpx.AsyncClient, name: str, password: str = PASSWORD) -> str:
    """Sign in with the login form, as a browser does; the session stays in ``http``'s cookie
    jar. The CSRF token of the session's pages."""
    form = await http.get("/console/login")
    assert form.status_code == 200, form.text
    answer = await http.post(
        "/console/login",
        data={"name": name, "password": password, "csrf": csrf_of(form.text), "next": "/console"},
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console"
    assert http.cookies.get(COOKIE), "no session cookie"
    account = await http.get("/console/account")
    assert account.status_code == 200, account.text
    return csrf_of(account.text)
