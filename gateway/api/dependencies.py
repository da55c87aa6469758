"""What routes take besides their path and body: the services, the authenticated caller, a
task id from the path."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.params import SkipValidation
from litestar.types import Scope

from gateway.api.middleware import RATE_LIMIT_STATE
from gateway.container import Services
from gateway.domain import Principal, is_task_id
from gateway.errors import NotFound

AnyRequest = Request[Any, Any, Any]
# Dependencies are the gateway's own objects: checking them on every request would only cost time.
Caller = SkipValidation[Principal]
Svc = SkipValidation[Services]


async def authenticate(
    services: Services,
    scope: Scope,
    authorization: str | None,
    mj_api_secret: str | None,
    client_ip: str | None,
) -> Principal:
    """The caller behind a request's key headers; its per-minute standing goes to the
    response's headers (``gateway.api.middleware``)."""
    principal, rate = await services.auth.authenticate(authorization, mj_api_secret, client_ip)
    if rate is not None:
        scope["state"][RATE_LIMIT_STATE] = rate
    return principal


async def provide_principal(request: AnyRequest, services: Svc) -> Principal:
    """The authenticated caller."""
    return await authenticate(
        services,
        request.scope,
        request.headers.get("authorization"),
        request.headers.get("mj-api-secret"),
        request.client.host if request.client else None,
    )


def task_id_of(value: str) -> int:
    """A gateway task id from a client string; NotFound for anything that cannot be one."""
    if not is_task_id(value):
        raise NotFound(f"task {value} not found")
    return int(value)
