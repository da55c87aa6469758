"""``/api/admin/users`` and ``/api/admin/keys``: users and their API keys."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from gateway import admin
from gateway.admin import as_json
from gateway.api.admin.bodies import (
    DEFAULT_PAGE,
    NewKeyBody,
    NewUserBody,
    Page,
    RateLimitsBody,
    UserGroupBody,
)
from gateway.api.dependencies import Svc
from gateway.container import Services


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
    issued = await admin.issue_key(services.pool, user_id, data.settings())
    return {"keyId": issued.key_id, "userId": user_id, "key": issued.key}


@post("/keys/{key_id:int}/revoke", status_code=200)
async def revoke_key(services: Svc, key_id: FromPath[int]) -> dict[str, Any]:
    """The key stops working at once, in every process."""
    await services.auth.announce_revocation(await admin.revoke_key(services.pool, key_id))
    return {"keyId": key_id, "revoked": True}


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


ROUTES = [
    list_users,
    create_user,
    show_user,
    disable_user,
    enable_user,
    set_user_group,
    set_user_limits,
    list_keys,
    issue_key,
    revoke_key,
    set_key_rate_limits,
]
