"""Money and the price book: top-ups, adjustments, key limits, prices, modes, groups, usage,
reconciliation."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from gateway import admin
from gateway.admin import as_json
from gateway.api.account import usage_period, usage_rows
from gateway.api.admin.bodies import CreditBody, KeyLimitBody, PriceBody, RatioBody
from gateway.api.dependencies import Svc
from gateway.billing.reconciliation import reconcile
from gateway.container import Services


async def _credit(services: Services, user_id: int, kind: str, body: CreditBody) -> dict[str, Any]:
    done = await admin.credit(
        services.pool, user_id, body.units, kind=kind, reason=body.reason, reference=body.reference
    )
    return {"applied": done.applied, "balanceUnits": done.balance_units, "source": done.source}


@post("/users/{user_id:int}/topups", status_code=200)
async def topup(
    data: JSONBody[CreditBody], services: Svc, user_id: FromPath[int]
) -> dict[str, Any]:
    """Add to a user's balance; the same ``reference`` never moves money twice."""
    return await _credit(services, user_id, "TOPUP", data)


@post("/users/{user_id:int}/adjustments", status_code=200)
async def adjust(
    data: JSONBody[CreditBody], services: Svc, user_id: FromPath[int]
) -> dict[str, Any]:
    """Correct a user's balance either way (never below zero)."""
    return await _credit(services, user_id, "ADJUST", data)


@put("/keys/{key_id:int}/limit")
async def key_limit(
    data: JSONBody[KeyLimitBody], services: Svc, key_id: FromPath[int]
) -> dict[str, Any]:
    """What the key may still spend from now on (``units: null``: unlimited)."""
    await admin.set_key_limit(services.pool, key_id, data.units, data.reason)
    return {"keyId": key_id, "limitUnits": data.units}


@get("/prices")
async def prices(services: Svc) -> dict[str, Any]:
    """The price book: base prices by priced action, mode ratios and group ratios (bp)."""
    book = await admin.price_list(services.pool)
    return {
        "pricesUnits": book.prices_units,
        "modeRatiosBp": book.mode_ratios_bp,
        "groups": as_json(book.groups),
    }


@put("/prices/{action:str}")
async def set_price(
    data: JSONBody[PriceBody], services: Svc, action: FromPath[str]
) -> dict[str, Any]:
    """A priced action's base price; tasks already held keep the price they were held at."""
    await admin.set_price(services.pool, action, data.units)
    return {"action": action, "units": data.units}


@put("/modes/{mode:str}")
async def set_mode_ratio(
    data: JSONBody[RatioBody], services: Svc, mode: FromPath[str]
) -> dict[str, Any]:
    await admin.set_mode_ratio(services.pool, mode, data.ratio_bp)
    return {"mode": mode, "ratioBp": data.ratio_bp}


@put("/groups/{name:str}")
async def set_group(
    data: JSONBody[RatioBody], services: Svc, name: FromPath[str]
) -> dict[str, Any]:
    """Create a user group or change its ratio."""
    await admin.set_group(services.pool, name, data.ratio_bp, data.description)
    return {"name": name, "ratioBp": data.ratio_bp}


@get("/usage")
async def usage(
    services: Svc,
    user_id: Annotated[int | None, QueryParameter(name="userId")] = None,
    key_id: Annotated[int | None, QueryParameter(name="keyId")] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """Charges kept and refunds by action and UTC day, of everyone or of one user or key."""
    start, end = usage_period(since, until)
    rows = await services.billing.usage(user_id, key_id, start, end)
    return {"since": start.date().isoformat(), "usage": usage_rows(rows)}


@get("/reconciliation")
async def reconciliation(services: Svc) -> dict[str, Any]:
    """``gateway reconcile`` over HTTP: whether the money adds up, and where it does not."""
    report = await reconcile(services.pool, hold_grace_s=60.0)
    return report.summary()


ROUTES = [
    topup,
    adjust,
    key_limit,
    prices,
    set_price,
    set_mode_ratio,
    set_group,
    usage,
    reconciliation,
]
