"""``/api/admin``: the operator's API, behind admin tokens (never client keys).

Users, keys, channels, prices and groups, money, tasks, the ledger and reconciliation. Bodies
are typed (and so described in the OpenAPI document at ``/schema/openapi.json``); unknown
fields are refused, since a typo must not be silently ignored where money moves. Answers are
JSON objects with camelCase keys; errors have the ``/mj`` shape ``{code, description, result:
null}``: 400/21 bad input, 401/24 no or wrong token, 404/21 unknown id. No answer carries a
channel secret, a key's hash or a callback token; an issued key is shown once, when issued.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Router, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from gateway import admin
from gateway.admin import MAX_UNITS, ChannelChanges, as_json
from gateway.api.account import usage_period, usage_rows
from gateway.api.mj import Svc
from gateway.billing.reconciliation import reconcile
from gateway.errors import BadRequest, Unauthorized
from gateway.services import Services
from gateway.storage.ledger import LedgerSearch
from gateway.storage.tasks import TaskSearch

DEFAULT_PAGE = 100

Units = Annotated[int, msgspec.Meta(ge=-MAX_UNITS, le=MAX_UNITS)]
PositiveUnits = Annotated[int, msgspec.Meta(ge=0, le=MAX_UNITS)]
Count = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
# Text that a PostgreSQL column can store: no NUL.
Text = Annotated[str, msgspec.Meta(max_length=500, pattern=r"^[^\x00]*$")]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"^[^\x00]*$")]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[^\x00]*$")]
Page = Annotated[int, QueryParameter(ge=1, le=admin.MAX_PAGE)]


class _Body(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    pass


class CreditBody(_Body):
    units: Units
    reason: Reason
    reference: Reference | None = None


class KeyLimitBody(_Body):
    units: PositiveUnits | None
    reason: Reason = "key limit set"


class PriceBody(_Body):
    units: PositiveUnits


class RatioBody(_Body):
    ratio_bp: Annotated[int, msgspec.Meta(ge=0, le=10**9)]
    description: Text | None = None


class UserGroupBody(_Body):
    group: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class RateLimitsBody(_Body):
    """Both limits, replaced together: an absent or null one is no limit of that kind."""

    requests_per_minute: Count | None = None
    max_open_tasks: Count | None = None


class NewUserBody(_Body):
    name: Name
    balance_units: PositiveUnits = 0
    group: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "default"


class NewKeyBody(_Body):
    name: Text = ""
    limit_units: PositiveUnits | None = None  # what the key may spend; None = only the balance
    expires_at: datetime | None = None
    allowed_actions: list[Annotated[str, msgspec.Meta(max_length=64)]] | None = None
    allowed_cidrs: list[Annotated[str, msgspec.Meta(max_length=64)]] | None = None
    requests_per_minute: Count | None = None
    max_open_tasks: Count | None = None


class ChannelBody(_Body):
    """A channel's settings. On create, ``name`` and ``baseUrl`` are required; on edit, every
    field is optional and an absent one is left as it is (``actions: null`` and ``maxInFlight:
    null`` lift those limits, ``secret: ""`` removes the secret)."""

    name: Name | None = None
    base_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    secret: Annotated[str, msgspec.Meta(max_length=1024, pattern=r"^[^\x00]*$")] | None = None
    weight: int | None = None
    priority: int | None = None
    modes: list[str] | None = None
    actions: list[str] | msgspec.UnsetType | None = msgspec.UNSET
    bot_types: list[str] | None = None
    max_in_flight: int | msgspec.UnsetType | None = msgspec.UNSET
    enabled: bool | None = None

    def changes(self) -> ChannelChanges:
        return ChannelChanges(
            name=self.name,
            base_url=self.base_url,
            secret=self.secret,
            weight=self.weight,
            priority=self.priority,
            modes=self.modes,
            actions=self.actions if isinstance(self.actions, list) else None,
            clear_actions=self.actions is None,
            bot_types=self.bot_types,
            max_in_flight=self.max_in_flight if isinstance(self.max_in_flight, int) else None,
            clear_max_in_flight=self.max_in_flight is None,
            enabled=self.enabled,
        )


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


# Users


@get("/users")
async def list_users(
    services: Svc,
    name_prefix: Annotated[str | None, QueryParameter(name="namePrefix")] = None,
    before: FromQuery[int | None] = None,
    limit: Page = DEFAULT_PAGE,
) -> dict[str, Any]:
    """Users, newest first; ``before`` (an id) pages back."""
    users = await admin.list_users(services.pool, name_prefix, before, limit)
    return {"users": as_json(users)}


@post("/users")
async def create_user(data: JSONBody[NewUserBody], services: Svc) -> dict[str, Any]:
    """A user with an opening balance (a TOPUP ledger row) in a group."""
    user_id = await admin.create_user(services.pool, data.name, data.balance_units, data.group)
    return as_json(await admin.user(services.pool, user_id))  # type: ignore[no-any-return]


@get("/users/{user_id:int}")
async def show_user(services: Svc, user_id: FromPath[int]) -> dict[str, Any]:
    return as_json(await admin.user(services.pool, user_id))  # type: ignore[no-any-return]


async def _set_user_enabled(services: Services, user_id: int, enabled: bool) -> dict[str, Any]:
    for key_hash in await admin.set_user_enabled(services.pool, user_id, enabled):
        await services.auth.announce_revocation(key_hash)
    return as_json(await admin.user(services.pool, user_id))  # type: ignore[no-any-return]


@post("/users/{user_id:int}/disable", status_code=200)
async def disable_user(services: Svc, user_id: FromPath[int]) -> dict[str, Any]:
    """Every key of the user stops working at once, in every process; money stays."""
    return await _set_user_enabled(services, user_id, False)


@post("/users/{user_id:int}/enable", status_code=200)
async def enable_user(services: Svc, user_id: FromPath[int]) -> dict[str, Any]:
    return await _set_user_enabled(services, user_id, True)


@put("/users/{user_id:int}/group")
async def set_user_group(
    data: JSONBody[UserGroupBody], services: Svc, user_id: FromPath[int]
) -> dict[str, Any]:
    await admin.set_user_group(services.pool, user_id, data.group)
    return {"userId": user_id, "group": data.group}


@put("/users/{user_id:int}/limits")
async def set_user_limits(
    data: JSONBody[RateLimitsBody], services: Svc, user_id: FromPath[int]
) -> dict[str, Any]:
    """Requests a minute and open tasks across all of the user's keys."""
    await admin.set_user_limits(
        services.pool,
        user_id,
        requests_per_minute=data.requests_per_minute,
        max_open_tasks=data.max_open_tasks,
    )
    return as_json(await admin.user(services.pool, user_id))  # type: ignore[no-any-return]


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


# Keys


@get("/keys")
async def list_keys(
    services: Svc,
    user_id: Annotated[int | None, QueryParameter(name="userId")] = None,
    include_revoked: Annotated[bool, QueryParameter(name="includeRevoked")] = False,
    before: FromQuery[int | None] = None,
    limit: Page = DEFAULT_PAGE,
) -> dict[str, Any]:
    """Keys, newest first, with their hint (``sk-abcd...wxyz``) but never the key."""
    keys = await admin.list_keys(services.pool, user_id, include_revoked, before, limit)
    return {"keys": as_json(keys)}


@post("/users/{user_id:int}/keys")
async def issue_key(
    data: JSONBody[NewKeyBody], services: Svc, user_id: FromPath[int]
) -> dict[str, Any]:
    """A new key for the user. The answer is the only place the key is ever shown."""
    await admin.user(services.pool, user_id)
    issued = await admin.issue_key(
        services.pool,
        user_id,
        name=data.name,
        quota_units=data.limit_units,
        expires_at=data.expires_at,
        allowed_actions=data.allowed_actions,
        allowed_cidrs=data.allowed_cidrs,
        requests_per_minute=data.requests_per_minute,
        max_open_tasks=data.max_open_tasks,
    )
    return {"keyId": issued.key_id, "userId": user_id, "key": issued.key}


@post("/keys/{key_id:int}/revoke", status_code=200)
async def revoke_key(services: Svc, key_id: FromPath[int]) -> dict[str, Any]:
    """The key stops working at once, in every process."""
    await services.auth.announce_revocation(await admin.revoke_key(services.pool, key_id))
    return {"keyId": key_id, "revoked": True}


@put("/keys/{key_id:int}/limit")
async def key_limit(
    data: JSONBody[KeyLimitBody], services: Svc, key_id: FromPath[int]
) -> dict[str, Any]:
    """What the key may still spend from now on (``units: null``: unlimited)."""
    await admin.set_key_limit(services.pool, key_id, data.units, data.reason)
    return {"keyId": key_id, "limitUnits": data.units}


@put("/keys/{key_id:int}/rate-limits")
async def set_key_rate_limits(
    data: JSONBody[RateLimitsBody], services: Svc, key_id: FromPath[int]
) -> dict[str, Any]:
    """The key's own requests a minute and open tasks."""
    await admin.set_key_rate_limits(
        services.pool,
        key_id,
        requests_per_minute=data.requests_per_minute,
        max_open_tasks=data.max_open_tasks,
    )
    return {
        "keyId": key_id,
        "requestsPerMinute": data.requests_per_minute,
        "maxOpenTasks": data.max_open_tasks,
    }


# Channels


@get("/channels")
async def list_channels(services: Svc) -> dict[str, Any]:
    """Every channel's settings and state (up, cooling, disabled); a secret shows only as
    ``hasSecret``."""
    cooling = await services.cooldowns.cooling()
    found = await admin.list_channels(services.pool)
    return {"channels": [admin.channel_view(channel, cooling) for channel in found]}


@post("/channels")
async def create_channel(data: JSONBody[ChannelBody], services: Svc) -> dict[str, Any]:
    if data.name is None or data.base_url is None:
        raise BadRequest("name and baseUrl are required")
    channel_id = await admin.add_channel(
        services.pool, services.box, data.name, data.base_url, data.changes()
    )
    return await _channel_answer(services, channel_id)


@get("/channels/{channel_id:int}")
async def show_channel(services: Svc, channel_id: FromPath[int]) -> dict[str, Any]:
    return await _channel_answer(services, channel_id)


@patch("/channels/{channel_id:int}")
async def edit_channel(
    data: JSONBody[ChannelBody], services: Svc, channel_id: FromPath[int]
) -> dict[str, Any]:
    """Change a channel's settings; every process sees them within 2 s."""
    await admin.edit_channel(services.pool, services.box, channel_id, data.changes())
    return await _channel_answer(services, channel_id)


@post("/channels/{channel_id:int}/enable", status_code=200)
async def enable_channel(services: Svc, channel_id: FromPath[int]) -> dict[str, Any]:
    await admin.edit_channel(services.pool, services.box, channel_id, ChannelChanges(enabled=True))
    return await _channel_answer(services, channel_id)


@post("/channels/{channel_id:int}/disable", status_code=200)
async def disable_channel(services: Svc, channel_id: FromPath[int]) -> dict[str, Any]:
    """No new work goes to the channel until the operator enables it again; its open tasks
    are still followed to their end."""
    await admin.edit_channel(services.pool, services.box, channel_id, ChannelChanges(enabled=False))
    return await _channel_answer(services, channel_id)


@post("/channels/{channel_id:int}/test", status_code=200)
async def test_channel(services: Svc, channel_id: FromPath[int]) -> dict[str, Any]:
    """Ask the channel, with its secret, for an empty task list (what the health probes ask):
    ``{"ok", "detail", "seconds"}``. Changes nothing, enabled or not."""
    result = await admin.test_channel(services.pool, services.box, services.upstream, channel_id)
    return as_json(result)  # type: ignore[no-any-return]


async def _channel_answer(services: Services, channel_id: int) -> dict[str, Any]:
    services.channels.invalidate()
    settings = await admin.channel_settings(services.pool, channel_id)
    return admin.channel_view(settings, await services.cooldowns.cooling())


# Prices and groups


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


# Tasks, money


@get("/tasks")
async def search_tasks(
    services: Svc,
    user_id: Annotated[int | None, QueryParameter(name="userId")] = None,
    key_id: Annotated[int | None, QueryParameter(name="keyId")] = None,
    channel_id: Annotated[int | None, QueryParameter(name="channelId")] = None,
    status: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    before: FromQuery[int | None] = None,
    limit: Page = DEFAULT_PAGE,
) -> dict[str, Any]:
    """Tasks submitted in [since, until) (ISO-8601), newest first, by user, key, channel or
    status; ``before`` (a task id) pages back. Upstream ids and channels show here."""
    search = TaskSearch(
        user_id=user_id,
        api_key_id=key_id,
        channel_id=channel_id,
        status=status,
        since_ms=admin.epoch_ms(admin.instant("since", since)),
        until_ms=admin.epoch_ms(admin.instant("until", until)),
        before_id=before,
        limit=limit,
    )
    tasks = await admin.search_tasks(services.pool, search)
    return {"tasks": [admin.task_record(task) for task in tasks]}


@get("/ledger")
async def ledger(
    services: Svc,
    user_id: Annotated[int | None, QueryParameter(name="userId")] = None,
    key_id: Annotated[int | None, QueryParameter(name="keyId")] = None,
    kind: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    before: FromQuery[int | None] = None,
    limit: Page = DEFAULT_PAGE,
) -> dict[str, Any]:
    """Ledger rows in [since, until), newest first; ``before`` (a row id) pages back."""
    search = LedgerSearch(
        user_id=user_id,
        api_key_id=key_id,
        kind=kind,
        since=admin.instant("since", since),
        until=admin.instant("until", until),
        before_id=before,
        limit=limit,
    )
    return {"entries": as_json(await admin.ledger(services.pool, search))}


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


def admin_router() -> Router:
    return Router(
        path="/api/admin",
        route_handlers=[
            list_users,
            create_user,
            show_user,
            disable_user,
            enable_user,
            set_user_group,
            set_user_limits,
            topup,
            adjust,
            list_keys,
            issue_key,
            revoke_key,
            key_limit,
            set_key_rate_limits,
            list_channels,
            create_channel,
            show_channel,
            edit_channel,
            enable_channel,
            disable_channel,
            test_channel,
            prices,
            set_price,
            set_mode_ratio,
            set_group,
            search_tasks,
            ledger,
            usage,
            reconciliation,
        ],
        guards=[require_admin_token],
        tags=["admin"],
    )
