"""The operator's pages under ``/console/admin``: an overview, users and their keys and money,
channels, prices and groups, the searches of tasks and the ledger, and reconciliation.

Each page does what the admin API does, through the same ``gateway.admin`` services (so the
same checks and words), and announces what the API announces. No page shows a key (only its
hint), a key's hash, a channel secret, a callback token or a client's webhook URL.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from gateway import activity, admin
from gateway.admin import ChannelChanges
from gateway.api.dependencies import Svc
from gateway.billing.reconciliation import reconcile
from gateway.container import Services
from gateway.errors import BadRequest
from gateway.routing.flavours import DEFAULT_FLAVOUR, FLAVOURS
from gateway.storage import console as console_store

from . import accounts
from .forms import Form, day, read_form
from .web import AnyRequest, Next, SignedIn, act, base_url, page

ADMIN = "/console/admin"
PAGE = 50
GAP_ROWS = 200  # rows of one reconciliation rule shown on the page


# Overview


@get("/")
async def overview(request: AnyRequest, services: Svc, visitor: SignedIn) -> Template:
    since_ms = int((time.time() - 3600) * 1000)
    return await page(
        request,
        "admin/overview.html",
        visitor,
        hour=await activity.last_hour(services.redis, services.keys),
        figures=await console_store.overview(services.pool, since_ms),
        channels=await _channel_rows(services),
    )


async def _channel_rows(services: Services) -> list[dict[str, Any]]:
    """Every channel with its state now and its tasks in flight."""
    cooling = await services.cooldowns.cooling()
    in_flight = await console_store.open_tasks_by_channel(services.pool)
    return [
        {
            "channel": channel,
            "view": admin.channel_view(channel, cooling),
            "in_flight": in_flight.get(channel.id, 0),
        }
        for channel in await admin.list_channels(services.pool)
    ]


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


# Channels


def _channel_changes(form: Form, *, new: bool) -> ChannelChanges:
    """The channel form's fields; on an edit, an empty secret keeps the secret, and empty
    actions or max in flight lift those limits."""
    secret = form.secret("secret").strip()
    actions = form.words("actions", "Actions")
    max_in_flight = form.number("max_in_flight", "Max in flight", low=1, high=1_000_000)
    modes = form.picked("modes")
    bot_types = form.picked("bot_types")
    return ChannelChanges(
        name=None if new else form.text("name", "Name", required=True, max_length=128),
        base_url=None if new else form.text("base_url", "Base URL", required=True, max_length=2048),
        secret="" if form.checked("remove_secret") else secret or None,
        weight=form.number("weight", "Weight", low=1, high=10_000),
        priority=form.number("priority", "Priority", low=-1000, high=1000),
        modes=modes or (None if new else []),
        bot_types=bot_types or (None if new else []),
        actions=actions or None,
        clear_actions=not new and not actions,
        max_in_flight=max_in_flight,
        clear_max_in_flight=not new and max_in_flight is None,
        flavour=form.text("flavour", "Flavour") or None,
    )


def _channel_form(**context: Any) -> dict[str, Any]:
    return {
        "modes": admin.MODES,
        "bot_types": admin.BOT_TYPES,
        "flavours": FLAVOURS,
        "default_flavour": DEFAULT_FLAVOUR,
        **context,
    }


@get("/channels")
async def channels(request: AnyRequest, services: Svc, visitor: SignedIn) -> Template:
    return await page(
        request,
        "admin/channels.html",
        visitor,
        **_channel_form(channels=await _channel_rows(services)),
    )


@post("/channels")
async def add_channel(request: AnyRequest, services: Svc, visitor: SignedIn) -> Redirect:
    form = await read_form(request)

    async def add() -> Next:
        name = form.text("name", "Name", required=True, max_length=128)
        url = form.text("base_url", "Base URL", required=True, max_length=2048)
        channel_id = await admin.add_channel(
            services.pool, services.box, name, url, _channel_changes(form, new=True)
        )
        services.channels.invalidate()
        return Next(f"{ADMIN}/channels/{channel_id}", f"channel {name} added")

    return await act(request, visitor, f"{ADMIN}/channels", add())


@get("/channels/{channel_id:int}")
async def channel_page(
    request: AnyRequest, services: Svc, visitor: SignedIn, channel_id: FromPath[int]
) -> Template:
    settings = await admin.channel_settings(services.pool, channel_id)
    in_flight = await console_store.open_tasks_by_channel(services.pool)
    return await page(
        request,
        "admin/channel.html",
        visitor,
        **_channel_form(
            channel=settings,
            view=admin.channel_view(settings, await services.cooldowns.cooling()),
            in_flight=in_flight.get(channel_id, 0),
        ),
    )


async def _change_channel(
    request: AnyRequest,
    services: Services,
    visitor: SignedIn,
    channel_id: int,
    changes: Callable[[], ChannelChanges],
    said: str,
) -> Redirect:
    async def change() -> str:
        await admin.edit_channel(services.pool, services.box, channel_id, changes())
        services.channels.invalidate()
        return said

    return await act(request, visitor, f"{ADMIN}/channels/{channel_id}", change())


@post("/channels/{channel_id:int}")
async def edit_channel(
    request: AnyRequest, services: Svc, visitor: SignedIn, channel_id: FromPath[int]
) -> Redirect:
    """Every process sees the change within 2 s."""
    form = await read_form(request)
    return await _change_channel(
        request, services, visitor, channel_id, lambda: _channel_changes(form, new=False), "saved"
    )


@post("/channels/{channel_id:int}/enable")
async def enable_channel(
    request: AnyRequest, services: Svc, visitor: SignedIn, channel_id: FromPath[int]
) -> Redirect:
    return await _change_channel(
        request, services, visitor, channel_id, lambda: ChannelChanges(enabled=True), "enabled"
    )


@post("/channels/{channel_id:int}/disable")
async def disable_channel(
    request: AnyRequest, services: Svc, visitor: SignedIn, channel_id: FromPath[int]
) -> Redirect:
    """No new work goes to the channel; its open tasks are still followed to their end."""
    return await _change_channel(
        request,
        services,
        visitor,
        channel_id,
        lambda: ChannelChanges(enabled=False),
        "disabled: no new work goes to it; its open tasks are followed to their end",
    )


@post("/channels/{channel_id:int}/test")
async def test_channel(
    request: AnyRequest, services: Svc, visitor: SignedIn, channel_id: FromPath[int]
) -> Redirect:
    """Ask the channel, with its secret, for an empty task list; changes nothing."""

    async def probe() -> str:
        found = await admin.test_channel(services.pool, services.box, services.upstream, channel_id)
        said = f"{found.detail} ({found.seconds:.2f} s)"
        if not found.ok:
            raise BadRequest(f"test failed: {said}")
        return f"test ok: {said}"

    return await act(request, visitor, f"{ADMIN}/channels/{channel_id}", probe())


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


# Searches


async def _user_id(services: Services, who: str | None) -> int | None:
    """A user named by id or by name."""
    if not who:
        return None
    if "\x00" in who or len(who) > 128:
        raise BadRequest(f"no user {who[:128]!r}")
    if who.isdigit() and len(who) < 19:
        return int(who)
    return await admin.user_id_by_name(services.pool, who)


def _id(name: str, value: str | None) -> int | None:
    """An id typed in a search form; None when left empty."""
    value = (value or "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise BadRequest(f"{name} is a whole number")
    return int(value)


def _more(filters: dict[str, Any], rows: list[Any]) -> dict[str, Any] | None:
    if len(rows) < PAGE:
        return None
    return {**{k: v for k, v in filters.items() if v not in (None, "")}, "before": rows[-1].id}


@get("/tasks")
async def tasks(
    request: AnyRequest,
    services: Svc,
    visitor: SignedIn,
    user: FromQuery[str | None] = None,
    key: FromQuery[str | None] = None,
    channel: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    before: FromQuery[int | None] = None,
) -> Template:
    who = (user or "").strip()
    filters = {
        "user": who,
        "key": (key or "").strip(),
        "channel": (channel or "").strip(),
        "status": status or "",
        "since": since or "",
        "until": until or "",
    }

    async def search() -> list[Any]:
        wanted = admin.TaskSearch(
            user_id=await _user_id(services, who),
            api_key_id=_id("Key id", key),
            channel_id=_id("Channel id", channel),
            status=status or None,
            since_ms=admin.epoch_ms(day("From", since)),
            until_ms=admin.epoch_ms(day("To", until, end=True)),
            before_id=before,
            limit=PAGE,
        )
        return await admin.search_tasks(services.pool, wanted)

    return await _search_page(
        request, visitor, "admin/tasks.html", filters, search(), statuses=admin.TASK_STATUSES
    )


@get("/ledger")
async def ledger(
    request: AnyRequest,
    services: Svc,
    visitor: SignedIn,
    user: FromQuery[str | None] = None,
    key: FromQuery[str | None] = None,
    kind: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    before: FromQuery[int | None] = None,
) -> Template:
    who = (user or "").strip()
    filters = {
        "user": who,
        "key": (key or "").strip(),
        "kind": kind or "",
        "since": since or "",
        "until": until or "",
    }

    async def search() -> list[Any]:
        wanted = admin.LedgerSearch(
            user_id=await _user_id(services, who),
            api_key_id=_id("Key id", key),
            kind=kind or None,
            since=day("From", since),
            until=day("To", until, end=True),
            before_id=before,
            limit=PAGE,
        )
        return await admin.ledger(services.pool, wanted)

    return await _search_page(
        request, visitor, "admin/ledger.html", filters, search(), kinds=admin.LEDGER_KINDS
    )


async def _search_page(
    request: AnyRequest,
    visitor: SignedIn,
    template: str,
    filters: dict[str, Any],
    search: Awaitable[list[Any]],
    **context: Any,
) -> Template:
    """A search's page: the rows found, or none and the reason a filter was refused."""
    try:
        rows, refused = await search, None
    except BadRequest as exc:
        rows, refused = [], ("error", exc.description)
    return await page(
        request,
        template,
        visitor,
        rows=rows,
        filters=filters,
        more=_more(filters, rows),
        **context,
        **({"said": refused} if refused else {}),
    )


# Reconciliation


@get("/reconciliation")
async def reconciliation(request: AnyRequest, visitor: SignedIn) -> Template:
    return await page(request, "admin/reconciliation.html", visitor, report=None)


@post("/reconciliation")
async def run_reconciliation(request: AnyRequest, services: Svc, visitor: SignedIn) -> Template:
    """``gateway reconcile`` on the page: whether the money adds up, and every place it does not."""
    report = await reconcile(services.pool, hold_grace_s=60.0)
    return await page(
        request,
        "admin/reconciliation.html",
        visitor,
        report=report,
        gap_rows=GAP_ROWS,
        ran_at=datetime.now(UTC),
    )


ROUTES = [
    overview,
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
    channels,
    add_channel,
    channel_page,
    edit_channel,
    enable_channel,
    disable_channel,
    test_channel,
    prices,
    set_price,
    set_mode_ratio,
    set_group,
    tasks,
    ledger,
    reconciliation,
    run_reconciliation,
]
