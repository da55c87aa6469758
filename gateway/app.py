"""``create_app(settings, servers)``: the HTTP app, whose lifespan runs ``build_services``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.openapi import OpenAPIConfig

from gateway import __version__, metrics
from gateway.api.account import me
from gateway.api.admin import admin_router
from gateway.api.callbacks import upstream_callback
from gateway.api.errors import EXCEPTION_HANDLERS
from gateway.api.fast_path import fetch_first
from gateway.api.health import healthz, metrics_endpoint, readyz
from gateway.api.middleware import request_log_middleware
from gateway.api.mj import mj_routers
from gateway.api.openapi import OpenApiJson
from gateway.api.requests import GatewayRequest
from gateway.config import Settings
from gateway.console.routes import console_routes
from gateway.console.web import template_config
from gateway.container import Services, build_services
from gateway.storage.servers import Servers

# What a page on another origin may send and read: the three key forms, JSON, the
# Idempotency-Key; the rate-limit and retry answers.
CORS_HEADERS = ["Authorization", "mj-api-secret", "Content-Type", "Idempotency-Key", "Range"]
CORS_EXPOSED = [
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Idempotent-Replayed",
    "X-Request-Id",
    "Content-Range",
    "Accept-Ranges",
]


def cors(origins: list[str]) -> CORSConfig | None:
    """Browsers may call the gateway from pages on ``origins`` (``*``: any), never with
    credentials: the key travels in a header, as public AI APIs have it."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["GET", "POST"],
        allow_headers=CORS_HEADERS,
        expose_headers=CORS_EXPOSED,
        allow_credentials=False,
    )


def provide_services(request: Request[Any, Any, Any]) -> Services:
    """The process's services. (Read through the request: a ``state`` parameter would copy the
    app's state, lock and all, on every request.)"""
    services: Services = request.app.state.services
    return services


class GatewayApp(Litestar):
    """The Litestar app behind the request log (``gateway.api.middleware``), with the task
    fetch answered before its routing (``gateway.api.fast_path``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        framework = super().__call__
        self._serve_http = request_log_middleware(
            fetch_first(self, framework, cors=self.cors_config is not None)
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == ScopeType.HTTP:
            await self._serve_http(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    servers: Servers,
    *,
    run_background: bool = True,
    rate_clock_ms: Callable[[], int] | None = None,
) -> GatewayApp:
    """The gateway's HTTP app; its services live in ``app.state.services`` while it runs
    (``build_services``, which takes ``run_background`` and ``rate_clock_ms``)."""
    metrics.BUILD.labels(__version__).set(1)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with build_services(
            settings, servers, run_background=run_background, rate_clock_ms=rate_clock_ms
        ) as services:
            app.state.services = services
            yield

    console = settings.console.enabled
    return GatewayApp(
        route_handlers=[
            *(console_routes() if console else []),
            *mj_routers(),
            me,
            admin_router(),
            upstream_callback,
            healthz,
            readyz,
            metrics_endpoint,
        ],
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        request_max_body_size=settings.relay.max_body_bytes,
        request_class=GatewayRequest,
        template_config=template_config() if console else None,
        cors_config=cors(settings.server.cors_origins),
        openapi_config=OpenAPIConfig(
            title="mj-gateway",
            version=__version__,
            description="The /mj relay, the account route and the operator's admin API.",
            path="/schema",
            render_plugins=[OpenApiJson()],
        ),
        logging_config=None,
        debug=False,
    )
