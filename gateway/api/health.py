"""``/healthz``: the process answers. ``/readyz``: its stores answer and the schema is current.
``/metrics``: Prometheus' view of every worker (behind a bearer token when one is configured).
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, get
from litestar.params import SkipValidation

from gateway import metrics
from gateway.errors import Unauthorized
from gateway.services import Services


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz")
async def readyz(
    services: SkipValidation[Services],
) -> Response[dict[str, Any]]:
    checks = await services.readiness()
    ready = all(checks.values())
    return Response({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


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
