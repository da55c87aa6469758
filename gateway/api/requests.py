"""The request class of every route: a JSON body is decoded by ``gateway.json_input``.

Routes that take a typed ``data`` body (the admin API) get it through ``json()``, so deep
nesting, text that is not UTF-8 and NUL characters are 400/21 there as on ``/mj``, not a 500.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from gateway import json_input
from gateway.errors import BadRequest


class GatewayRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return json_input.decode(await self.body() or b"null")
        except json_input.JsonInputError as error:
            raise BadRequest(f"invalid request: {error}") from None
