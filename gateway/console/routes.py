"""The console's routes under ``/console``: the open sign-in pages, the customer's pages behind
``signed_in``, the operator's under ``/console/admin`` behind ``operator_only`` too, and the
stylesheet and script."""

from __future__ import annotations

import asyncpg
from litestar import Router
from litestar.di import Provide
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from gateway.errors import ApiError

from . import customer, operator, signin
from .web import (
    STATIC,
    SignInNeeded,
    add_security_headers,
    error_page,
    operator_only,
    provide_visitor,
    signed_in,
    to_sign_in,
    unstorable_page,
)


def console_routes() -> list[ControllerRouterHandler]:
    return [
        Router(
            path="/console",
            route_handlers=[
                *signin.PUBLIC,
                Router(
                    path="/",
                    route_handlers=[*customer.ROUTES, signin.logout],
                    guards=[signed_in],
                ),
                Router(
                    path="/admin",
                    route_handlers=operator.ROUTES,
                    guards=[signed_in, operator_only],
                ),
            ],
            dependencies={"visitor": Provide(provide_visitor, sync_to_thread=False)},
            exception_handlers={
                SignInNeeded: to_sign_in,
                ApiError: error_page,
                asyncpg.DataError: unstorable_page,
            },
            after_request=add_security_headers,
            include_in_schema=False,
        ),
        create_static_files_router(
            path="/console/static", directories=[STATIC], include_in_schema=False
        ),
    ]
