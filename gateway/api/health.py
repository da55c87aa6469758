"""``/healthz``: the process answers. ``/readyz``: its stores answer and the schema is current."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.params import SkipValidation

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
