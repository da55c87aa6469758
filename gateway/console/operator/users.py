"""Users, their money, their keys, the operator mark and invitation links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from gateway import admin
from gateway.api.dependencies import Svc
from gateway.container import Services
from gateway.errors import BadRequest
from gateway.storage import console as console_store

from .. import accounts
from ..forms import Form, read_form
from ..web import ADMIN, AnyRequest, Next, SignedIn, act, base_url, page

PAGE = 50

# Users


async def _groups(services: Services) -> list[str]:
    return [group.name for group in (await admin.price_list(services.pool)).groups]


@get("/users")
async def users(
    request: AnyRequest,
    services: Svc,
    visitor: SignedIn,
    q: FromQuery[str | None] = None,
    before: FromQuery[int | None] = None,
) -> Template:
    q = (q or "").replace("\x00", "").strip()[:128] or None
    found = await admin.list_users(services.pool, q, before, PAGE)
    return await page(
        request,
        "admin/users.html",
        visitor,
        users=found,
        q=q,
        groups=await _groups(services),
        more={**({"q": q} if q else {}), "before": found[-1].id} if len(found) == PAGE else None,
    )


@post("/users")
async def create_user(request: AnyRequest, services: Svc, visitor: SignedIn) -> Redirect:
    """A user with an opening balance (a TOPUP ledger row); their page is next."""
    form = await read_form(request)

    async def create() -> Next:
        name = form.text("name", "User name", required=True, max_length=128)
        balance = form.number("balance", "Opening balance", high=admin.MAX_UNITS) or 0
        user_id = await admin.create_user(
            services.pool, name, balance, form.text("group", "Group") or "default"
        )
        if form.checked("operator"):
            await admin.set_operator(services.pool, user_id, True)
        return Next(f"{ADMIN}/users/{user_id}", f"user {name} created")

    return await act(request, visitor, f"{ADMIN}/users", create())


async def _user_page(
    request: AnyRequest,
    services: Services,
    visitor: SignedIn,
    user_id: int,
    revoked: bool = False,
    **extra: Any,
) -> Template:
    record = await admin.user(services.pool, user_id)
    marks = await console_store.console_user(services.pool, user_id)
    return await page(
        request,
        "admin/user.html",
        visitor,
        user=record,
        operator=bool(marks and marks.operator),
        groups=await _groups(services),
        keys=await admin.list_keys(services.pool, user_id, revoked, None, admin.MAX_PAGE),
        revoked=revoked,
        **extra,
    )


@get("/users/{user_id:int}")
async def user_page(
    request: AnyRequest,
    services: Svc,
    visitor: SignedIn,
    user_id: FromPath[int],
    revoked: FromQuery[bool] = False,
) -> Template:
    return await _user_page(request, services, visitor, user_id, revoked)


def _not_self(visitor: SignedIn, user_id: int, what: str) -> None:
    if user_id == visitor.user.id:
        raise BadRequest(f"you cannot {what} yourself: ask another operator")


async def _set_enabled(
    request: AnyRequest, services: Services, visitor: SignedIn, user_id: int, enabled: bool
) -> Redirect:
    async def change() -> str:
        if not enabled:
            _not_self(visitor, user_id, "disable")
        for key_hash in await admin.set_user_enabled(services.pool, user_id, enabled):
            await services.auth.announce_revocation(key_hash)
        return "user enabled" if enabled else "user disabled: their keys stop working at once"

    return await act(request, visitor, f"{ADMIN}/users/{user_id}", change())


@post("/users/{user_id:int}/disable")
async def disable_user(
    request: AnyRequest, services: Svc, visitor: SignedIn, user_id: FromPath[int]
) -> Redirect:
    return await _set_enabled(request, services, visitor, user_id, False)


@post("/users/{user_id:int}/enable")
async def enable_user(
    request: AnyRequest, services: Svc, visitor: SignedIn, user_id: FromPath[int]
) -> Redirect:
    return await _set_enabled(request, services, visitor, user_id, True)


@post("/users/{user_id:int}/group")
async def set_user_group(
    request: AnyRequest, services: Svc, visitor: SignedIn, user_id: FromPath[int]
) -> Redirect:
    form = await read_form(request)

    async def change() -> str:
        group = form.text("group", "Group", required=True, max_length=64)
        await admin.set_user_group(services.pool, user_id, group)
        return f"group set to {group}"

    return await act(request, visitor, f"{ADMIN}/users/{user_id}", change())


def _rate_limits(form: Form) -> dict[str, int | None]:
    """Requests a minute and open tasks, both replaced; an empty field is no limit."""
    return {
        "requests_per_minute": form.number(
            "rpm", "Requests a minute", low=1, high=admin.MAX_RATE_LIMIT
        ),
        "max_open_tasks": form.number("open", "Open tasks", low=1, high=admin.MAX_RATE_LIMIT),
    }


@post("/users/{user_id:int}/limits")
async def set_user_limits(
    request: AnyRequest, services: Svc, visitor: SignedIn, user_id: FromPath[int]
) -> Redirect:
    form = await read_form(request)

    async def change() -> str:
        await admin.set_user_limits(services.pool, user_id, **_rate_limits(form))
        return "rate limits saved"

    return await act(request, visitor, f"{ADMIN}/users/{user_id}", change())


async def _credit(
    request: AnyRequest, services: Services, visitor: SignedIn, user_id: int, kind: str
) -> Redirect:
    """A top-up or an adjustment; its reference makes it move money once, however often sent."""
    form = await read_form(request)

    async def move() -> str:
        low = 1 if kind == "TOPUP" else -admin.MAX_UNITS
        units = form.required_number("units", "Units", low=low, high=admin.MAX_UNITS)
        reason = form.text("reason", "Reason", required=True)
        reference = form.text("reference", "Reference", required=True, max_length=200)
        done = await admin.credit(
            services.pool, user_id, units, kind=kind, reason=reason, reference=reference
        )
        what = "top-up" if kind == "TOPUP" else "adjustment"
        if not done.applied:
            return (
                f"not applied: reference {reference} was applied before, nothing moved;"
                f" balance {done.balance_units:,} units"
            )
        return f"{what} of {units:+,} units applied: balance {done.balance_units:,} units"

    return await act(request, visitor, f"{ADMIN}/users/{user_id}", move())


@post("/users/{user_id:int}/topup")
async def topup(
    request: AnyRequest, services: Svc, visitor: SignedIn, user_id: FromPath[int]
) -> Redirect:
    return await _credit(request, services, visitor, user_id, "TOPUP")


@post("/users/{user_id:int}/adjust")
async def adjust(
    request: AnyRequest, services: Svc, visitor: SignedIn, user_id: FromPath[int]
) -> Redirect:
    return await _credit(request, services, visitor, user_id, "ADJUST")


@post("/users/{user_id:int}/operator")
async def set_operator(
    request: AnyRequest, services: Svc, visitor: SignedIn, user_id: FromPath[int]
) -> Redirect:
    form = await read_form(request)

    async def change() -> str:
        operator = form.checked("operator")
        if not operator:
            _not_self(visitor, user_id, "take the operator mark from")
        await admin.set_operator(services.pool, user_id, operator)
        return "operator now" if operator else "no longer an operator"

    return await act(request, visitor, f"{ADMIN}/users/{user_id}", change())


@post("/users/{user_id:int}/invitation")
async def invite(
    request: AnyRequest, services: Svc, visitor: SignedIn, user_id: FromPath[int]
) -> Template:
    """A link that sets the user's password (a first one, or a new one), shown on this page
    once."""
    ttl_s = services.settings.console.invitation_ttl_s
    token = await accounts.invite(services.pool, user_id, ttl_s)
    return await _user_page(
        request,
        services,
        visitor,
        user_id,
        invitation=base_url(request) + accounts.INVITATION_PATH + token,
        invitation_until=datetime.now(UTC) + timedelta(seconds=ttl_s),
    )


# Keys of a user


@post("/keys/{key_id:int}/revoke")
async def revoke_key(
    request: AnyRequest, services: Svc, visitor: SignedIn, key_id: FromPath[int]
) -> Redirect:
    key = await admin.key(services.pool, key_id)

    async def revoke() -> str:
        await services.auth.announce_revocation(await admin.revoke_key(services.pool, key.id))
        return f"key {key.hint} revoked: it works no more"

    return await act(request, visitor, f"{ADMIN}/users/{key.user_id}", revoke())


@post("/keys/{key_id:int}/limit")
async def key_limit(
    request: AnyRequest, services: Svc, visitor: SignedIn, key_id: FromPath[int]
) -> Redirect:
    key = await admin.key(services.pool, key_id)
    form = await read_form(request)

    async def change() -> str:
        units = form.number("units", "Spend limit", high=admin.MAX_UNITS)
        reason = form.text("reason", "Reason") or "key limit set"
        await admin.set_key_limit(services.pool, key.id, units, reason)
        return f"key {key.hint}: spend limit {'none' if units is None else f'{units:,} units'}"

    return await act(request, visitor, f"{ADMIN}/users/{key.user_id}", change())


@post("/keys/{key_id:int}/rate-limits")
async def key_rate_limits(
    request: AnyRequest, services: Svc, visitor: SignedIn, key_id: FromPath[int]
) -> Redirect:
    key = await admin.key(services.pool, key_id)
    form = await read_form(request)

    async def change() -> str:
        await admin.set_key_rate_limits(services.pool, key.id, **_rate_limits(form))
        return f"key {key.hint}: rate limits saved"

    return await act(request, visitor, f"{ADMIN}/users/{key.user_id}", change())


ROUTES = [
    users,
    create_user,
    user_page,
    disable_user,
    enable_user,
    set_user_group,
    set_user_limits,
    topup,
    adjust,
    set_operator,
    invite,
    revoke_key,
    key_limit,
    key_rate_limits,
]
