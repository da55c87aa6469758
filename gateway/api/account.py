"""``/api/me`` (a client's own account, with its API key) and ``/api/admin`` (the operator's,
with an admin token): the money side of the gateway.

Answers are JSON objects with camelCase keys; errors have the ``/mj`` shape ``{code,
description, result: null}`` (400/21 bad input, 401/24 no or wrong token, 404/21 unknown id).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Router, get, post, put
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery, QueryParameter

from gateway import admin
from gateway.admin import MAX_UNITS
from gateway.api.mj import AnyRequest, Caller, Svc, provide_principal
from gateway.api.validation import decode_json
from gateway.billing.reconciliation import reconcile
from gateway.errors import BadRequest, Unauthorized
from gateway.services import Services
from gateway.storage.usage import UsageRow

Body = TypeVar("Body", bound=msgspec.Struct)
DEFAULT_USAGE_DAYS = 30
Units = Annotated[int, msgspec.Meta(ge=-MAX_UNITS, le=MAX_UNITS)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]


class CreditBody(msgspec.Struct, forbid_unknown_fields=True):
    units: Units
    reason: Reason
    reference: Reference | None = None


class KeyLimitBody(msgspec.Struct, forbid_unknown_fields=True):
    units: Annotated[int, msgspec.Meta(ge=0, le=MAX_UNITS)] | None
    reason: Reason = "key limit set"


class PriceBody(msgspec.Struct, forbid_unknown_fields=True):
    units: Annotated[int, msgspec.Meta(ge=0, le=MAX_UNITS)]


class RatioBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    ratio_bp: Annotated[int, msgspec.Meta(ge=0, le=10**9)]
    description: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class UserGroupBody(msgspec.Struct, forbid_unknown_fields=True):
    group: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


async def _body(kind: type[Body], request: AnyRequest, services: Services) -> Body:
    return decode_json(kind, await request.body(), services.settings.relay.max_body_bytes)


def _usage(rows: list[UsageRow]) -> list[dict[str, Any]]:
    return [
        {
            "day": row.day.isoformat(),
            "action": row.action,
            "charges": row.charges,
            "chargedUnits": row.charged_units,
            "refunds": row.refunds,
            "refundedUnits": row.refunded_units,
        }
        for row in rows
    ]


def _period(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """[since, until) from ISO days (UTC); by default the last 30 days, today included."""
    try:
        end = date.fromisoformat(until) if until else datetime.now(UTC).date()
        start = date.fromisoformat(since) if since else end - timedelta(days=DEFAULT_USAGE_DAYS - 1)
    except ValueError:
        raise BadRequest("since and until are days: YYYY-MM-DD") from None
    midnight = datetime.min.time().replace(tzinfo=UTC)
    return datetime.combine(start, midnight), datetime.combine(end + timedelta(days=1), midnight)


@get("/api/me", dependencies={"principal": Provide(provide_principal)})
async def me(
    services: Svc,
    principal: Caller,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """The caller's balance, key limit, webhook signing secret, and usage of the user and of
    this key by action and day."""
    account = await services.billing.account(principal)
    start, end = _period(since, until)
    return {
        "userId": account.user_id,
        "name": account.name,
        "group": account.group_name,
        "balanceUnits": account.balance_units,
        "webhookSecret": principal.webhook_secret,
        "key": {
            "id": account.key_id,
            "name": account.key_name,
            "hint": account.key_hint,
            "limitUnits": account.key_limit_units,
        },
        "since": start.date().isoformat(),
        "until": (end - timedelta(days=1)).date().isoformat(),
        "usage": _usage(await services.billing.usage(account.user_id, None, start, end)),
        "keyUsage": _usage(await services.billing.usage(None, account.key_id, start, end)),
    }


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


async def _credit(
    request: AnyRequest, services: Services, user_id: int, kind: str
) -> dict[str, Any]:
    body = await _body(CreditBody, request, services)
    done = await admin.credit(
        services.pool, user_id, body.units, kind=kind, reason=body.reason, reference=body.reference
    )
    return {"applied": done.applied, "balanceUnits": done.balance_units, "source": done.source}


@post("/users/{user_id:int}/topups", status_code=200)
async def topup(request: AnyRequest, services: Svc, user_id: FromPath[int]) -> dict[str, Any]:
    """Add to a user's balance; the same ``reference`` never moves money twice."""
    return await _credit(request, services, user_id, "TOPUP")


@post("/users/{user_id:int}/adjustments", status_code=200)
async def adjust(request: AnyRequest, services: Svc, user_id: FromPath[int]) -> dict[str, Any]:
    """Correct a user's balance either way (never below zero)."""
    return await _credit(request, services, user_id, "ADJUST")


@put("/keys/{key_id:int}/limit")
async def key_limit(request: AnyRequest, services: Svc, key_id: FromPath[int]) -> dict[str, Any]:
    """What the key may still spend from now on (``units: null``: unlimited)."""
    body = await _body(KeyLimitBody, request, services)
    await admin.set_key_limit(services.pool, key_id, body.units, body.reason)
    return {"keyId": key_id, "limitUnits": body.units}


@get("/usage")
async def usage(
    services: Svc,
    user_id: Annotated[int | None, QueryParameter(name="userId")] = None,
    key_id: Annotated[int | None, QueryParameter(name="keyId")] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """Charges kept and refunds by action and UTC day, of everyone or of one user or key."""
    start, end = _period(since, until)
    rows = await services.billing.usage(user_id, key_id, start, end)
    return {"since": start.date().isoformat(), "usage": _usage(rows)}


@get("/prices")
async def prices(services: Svc) -> dict[str, Any]:
    """The price book: base prices by priced action, mode ratios and group ratios (bp)."""
    book = await admin.price_list(services.pool)
    return {
        "pricesUnits": book.prices_units,
        "modeRatiosBp": book.mode_ratios_bp,
        "groups": [
            {"name": g.name, "ratioBp": g.ratio_bp, "description": g.description}
            for g in book.groups
        ],
    }


@put("/prices/{action:str}")
async def set_price(request: AnyRequest, services: Svc, action: FromPath[str]) -> dict[str, Any]:
    """A priced action's base price; tasks already held keep the price they were held at."""
    body = await _body(PriceBody, request, services)
    await admin.set_price(services.pool, action, body.units)
    return {"action": action, "units": body.units}


@put("/modes/{mode:str}")
async def set_mode_ratio(request: AnyRequest, services: Svc, mode: FromPath[str]) -> dict[str, Any]:
    body = await _body(RatioBody, request, services)
    await admin.set_mode_ratio(services.pool, mode, body.ratio_bp)
    return {"mode": mode, "ratioBp": body.ratio_bp}


@put("/groups/{name:str}")
async def set_group(request: AnyRequest, services: Svc, name: FromPath[str]) -> dict[str, Any]:
    """Create a user group or change its ratio."""
    body = await _body(RatioBody, request, services)
    await admin.set_group(services.pool, name, body.ratio_bp, body.description)
    return {"name": name, "ratioBp": body.ratio_bp}


@put("/users/{user_id:int}/group")
async def set_user_group(
    request: AnyRequest, services: Svc, user_id: FromPath[int]
) -> dict[str, Any]:
    body = await _body(UserGroupBody, request, services)
    await admin.set_user_group(services.pool, user_id, body.group)
    return {"userId": user_id, "group": body.group}


@get("/reconciliation")
async def reconciliation(services: Svc) -> dict[str, Any]:
    """``gateway reconcile`` over HTTP: whether the money adds up, and where it does not."""
    report = await reconcile(services.pool, hold_grace_s=60.0)
    return report.summary()


def admin_router() -> Router:
    return Router(
        path="/api/admin",
        route_handlers=[
            topup,
            adjust,
            key_limit,
            usage,
            prices,
            set_price,
            set_mode_ratio,
            set_group,
            set_user_group,
            reconciliation,
        ],
        guards=[require_admin_token],
    )
