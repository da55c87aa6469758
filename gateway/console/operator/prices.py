"""The price book: base prices, speed-mode ratios and groups."""

from __future__ import annotations

from litestar import get, post
from litestar.response import Redirect, Template

from gateway import admin
from gateway.api.dependencies import Svc

from ..forms import read_form
from ..web import ADMIN, AnyRequest, SignedIn, act, page

# Prices, speed modes and groups


@get("/prices")
async def prices(request: AnyRequest, services: Svc, visitor: SignedIn) -> Template:
    return await page(
        request,
        "admin/prices.html",
        visitor,
        book=await admin.price_list(services.pool),
        modes=admin.MODES,
    )


@post("/prices")
async def set_price(request: AnyRequest, services: Svc, visitor: SignedIn) -> Redirect:
    """A priced action's base price, new or changed; tasks already held keep theirs."""
    form = await read_form(request)

    async def change() -> str:
        action = form.text("action", "Priced action", required=True, max_length=64)
        units = form.required_number("units", "Price", high=admin.MAX_UNITS)
        await admin.set_price(services.pool, action, units)
        return f"{action} costs {units:,} units"

    return await act(request, visitor, f"{ADMIN}/prices", change())


@post("/prices/modes")
async def set_mode_ratio(request: AnyRequest, services: Svc, visitor: SignedIn) -> Redirect:
    form = await read_form(request)

    async def change() -> str:
        mode = form.text("mode", "Mode", required=True, max_length=16)
        ratio = form.required_number("ratio_bp", "Ratio", high=10**9)
        await admin.set_mode_ratio(services.pool, mode, ratio)
        return f"{mode} ratio {ratio:,} bp"

    return await act(request, visitor, f"{ADMIN}/prices", change())


@post("/prices/groups")
async def set_group(request: AnyRequest, services: Svc, visitor: SignedIn) -> Redirect:
    """Create a group or change its ratio (and its description, when one is given)."""
    form = await read_form(request)

    async def change() -> str:
        name = form.text("name", "Group", required=True, max_length=64)
        ratio = form.required_number("ratio_bp", "Ratio", high=10**9)
        description = form.text("description", "Description") or None
        await admin.set_group(services.pool, name, ratio, description)
        return f"group {name}: ratio {ratio:,} bp"

    return await act(request, visitor, f"{ADMIN}/prices", change())


ROUTES = [prices, set_price, set_mode_ratio, set_group]
