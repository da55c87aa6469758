"""``/healthz``: the process answers. ``/readyz``: its stores answer and the schema is current.
``/metrics``: Prometheus' view of every worker (behind a bearer token when one is configured).
"""

from __future__ import annotations

import contextlib
import hmac
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from litestar import Request, Response, get
from litestar.params import SkipValidation

from gateway import metrics
from gateway.container import Services
from gateway.errors import MigrationError, Unauthorized
from gateway.storage.migrations import pending_migrations


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz")
async def readyz(
    services: SkipValidation[Services],
) -> Response[dict[str, Any]]:
    checks = await readiness(services)
    ready = all(checks.values())
    return Response({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


async def readiness(services: Services) -> dict[str, bool]:
    """Whether PostgreSQL answers with a current schema, and Redis answers."""
    checks = {"database": False, "migrations": False, "redis": False}
    try:
        async with services.pool.acquire() as conn:
            checks["database"] = True
            checks["migrations"] = not await pending_migrations(
                conn, services.settings.migrations_dir
            )
    except (OSError, asyncpg.PostgresError, MigrationError):
        pass
    with contextlib.suppress(OSError, aioredis.RedisError):
        checks["redis"] = bool(await services.redis.ping())
    return checks


@get("/metrics", media_type="text/plain")
async def metrics_endpoint(
    request: Request[Any, Any, Any], services: SkipValidation[Services]
) -> Response[bytes]:
    token = services.settings.server.metrics_token
    if token is not None:
        offered = request.headers.get("authorization", "").encode()
        expected = f"Bearer {token.get_secret_value()}".encode()
        if not hmac.compare_digest(offered, expected):
            raise Unauthorized("a metrics token is required")
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
