"""A customer's API keys: made (shown once), named, narrowed, limited, revoked."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from gateway import admin
from gateway.api.dependencies import Svc
from gateway.container import Services
from gateway.domain import KeySettings
from gateway.errors import BadRequest, NotFound
from gateway.storage.accounts import KeyListing

from ..forms import read_form
from ..web import (
    AnyRequest,
    SignedIn,
    act,
    base_url,
    page,
)

# Keys


async def _own_key(services: Services, visitor: SignedIn, key_id: int) -> KeyListing:
    key = await admin.key(services.pool, key_id)
    if key.user_id != visitor.user.id or key.revoked_at is not None:
        raise NotFound(f"no key {key_id}")
    return key


async def _keys_page(
    request: AnyRequest, services: Services, visitor: SignedIn, **extra: Any
) -> Template:
    keys = await admin.list_keys(services.pool, visitor.user.id, False, None, admin.MAX_PAGE)
    book = await admin.price_list(services.pool)
    return await page(
        request,
        "keys.html",
        visitor,
        keys=keys,
        actions=sorted(book.prices_units),
        max_keys=services.settings.console.max_keys,
        base=base_url(request),
        **extra,
    )


@get("/keys")
async def keys(request: AnyRequest, services: Svc, visitor: SignedIn) -> Template:
    return await _keys_page(request, services, visitor)


@post("/keys")
async def create_key(request: AnyRequest, services: Svc, visitor: SignedIn) -> Response[Any]:
    """The new key is on this one page, once; it is never shown again."""
    form = await read_form(request)

    async def issue() -> str:
        held = await admin.list_keys(services.pool, visitor.user.id, False, None, admin.MAX_PAGE)
        if len(held) >= services.settings.console.max_keys:
            raise BadRequest(
                f"you hold {len(held)} keys, the most allowed: revoke one to make another"
            )
        settings = KeySettings(
            name=form.text("name", "Name"),
            quota_units=form.number("limit", "Spend limit", high=admin.MAX_UNITS),
            allowed_actions=form.picked("actions") or None,
            allowed_cidrs=form.words("networks", "Networks") or None,
        )
        for action in settings.allowed_actions or ():
            if not admin.PRICE_ACTION.fullmatch(action):
                raise BadRequest(f"{action!r} is not a priced action")
        return (await admin.issue_key(services.pool, visitor.user.id, settings)).key

    try:
        new_key = await issue()
    except BadRequest as exc:
        await services.sessions.say(visitor.session, "error", exc.description)
        return Redirect(path="/console/keys", status_code=303)
    return await _keys_page(request, services, visitor, new_key=new_key)


@post("/keys/{key_id:int}")
async def edit_key(
    request: AnyRequest, services: Svc, visitor: SignedIn, key_id: FromPath[int]
) -> Redirect:
    key = await _own_key(services, visitor, key_id)
    form = await read_form(request)

    async def edit() -> str:
        key_hash = await admin.set_key_scope(
            services.pool,
            key.id,
            form.text("name", "Name"),
            form.picked("actions") or None,
            form.words("networks", "Networks") or None,
        )
        limit = form.number("limit", "Spend limit", high=admin.MAX_UNITS)
        if limit != key.limit_units:
            await admin.set_key_limit(services.pool, key.id, limit, "set in the console")
        await services.auth.announce_revocation(key_hash)  # every process reads it afresh
        return f"key {key.hint} saved"

    return await act(request, visitor, "/console/keys", edit())


@post("/keys/{key_id:int}/revoke")
async def revoke_key(
    request: AnyRequest, services: Svc, visitor: SignedIn, key_id: FromPath[int]
) -> Redirect:
    key = await _own_key(services, visitor, key_id)

    async def revoke() -> str:
        await services.auth.announce_revocation(await admin.revoke_key(services.pool, key.id))
        return f"key {key.hint} revoked: it works no more"

    return await act(request, visitor, "/console/keys", revoke())


ROUTES = [keys, create_key, edit_key, revoke_key]
