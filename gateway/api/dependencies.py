"""What routes take besides their path and body: the services, the authenticated caller, a
task id from the path."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.params import SkipValidation

from gateway.api.middleware import RATE_LIMIT_STATE
from gateway.container import Services
from gateway.domain import Principal, is_task_id
from gateway.errors import NotFound

AnyRequest = Request[Any, Any, Any]
# Dependencies are the gateway's own objects: checking them on every request would only cost time.
Caller = SkipValidation[Principal]
Svc = SkipValidation[Services]


async def provide_principal(request: AnyRequest, services: Svc) -> Principal:
    """The authenticated caller; its per-minute standing goes to the response's headers."""
    principal, rate = await services.auth.authenticate(
        request.headers.get("authorization"),
        request.headers.get("mj-api-secret"),
        request.client.host if request.client else None,
    )
    if rate is not None:
        request.scope["state"][RATE_LIMIT_STATE] = rate
    return principal


def task_id_of(value: str) -> int:
    """A gateway task id from a client string; NotFound for anything that cannot be one."""
    if not is_task_id(value):
        raise NotFound(f"task {value} not found")
    return int(value)
