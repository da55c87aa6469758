"""The gateway's one exception tree.

    GatewayError
    ├── ApiError                 answered to a client as {"code", "description", "result": null}
    │   ├── BadRequest           400 / 21  malformed body, bad field, bad image, parent not SUCCESS
    │   ├── PayloadTooLarge      413 / 21
    │   ├── Unauthorized         401 / 24  missing or unknown API key
    │   ├── Forbidden            403 / 24  key disabled or expired, IP or action not allowed
    │   ├── InsufficientBalance  403 / 25  user balance or key limit too low
    │   ├── NotFound             404 / 21  task unknown or not the caller's
    │   ├── Conflict             409 / 21  idempotency key reused or still in flight
    │   ├── RateLimited          429 / 23  (Retry-After, and X-RateLimit-* for requests a minute)
    │   ├── InternalError        500 / 23
    │   ├── UpstreamFailed       502 / 23  every tried channel failed
    │   ├── QueueFull            503 / 23  every eligible channel's queue full (Retry-After)
    │   ├── ChannelsResting      503 / 23  every channel that serves it is resting (Retry-After)
    │   ├── Unavailable          503 / 23  a store the request needs cannot be reached
    │   ├── NoAccount            503 / 24  no channel with a usable upstream account
    │   └── UpstreamTimeout      504 / 23  every tried channel timed out
    ├── UpstreamError            one call to a channel failed; the submit path decides the answer
    │   ├── UpstreamUnreachable  no connection was made: nothing reached the upstream
    │   ├── UpstreamTimedOut     sent, but no answer in time: the upstream may have acted
    │   ├── UpstreamDisconnected the connection dropped before a full answer
    │   ├── UpstreamHttpError    an HTTP status that is not 2xx (``status``)
    │   └── UpstreamBadBody      an answer that is not the JSON it should be
    ├── PrivateAddressError      (also an OSError) a URL from someone else leads to no public
    │                            address (``gateway.public_addresses``)
    └── StartupError             the process cannot start as configured
        ├── EmbeddedServerError  an embedded PostgreSQL or Redis would not start
        ├── MigrationError       migration files and the database disagree
        └── SealingError         a sealed secret does not open with any configured key

Each ApiError class carries its HTTP status and documented code; the HTTP layer renders any of
them the same way, so nothing else decides a status. An error may carry response headers too.
The upstream client translates every transport fault into an UpstreamError, in one place.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ApiError(GatewayError):
    http_status: ClassVar[int] = 500
    code: ClassVar[int] = 23
    default_description: ClassVar[str] = "internal error"

    def __init__(
        self,
        description: str | None = None,
        *,
        properties: dict[str, Any] | None = None,
        retry_after_s: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.description = description or self.default_description
        self.properties = properties
        self.retry_after_s = retry_after_s
        self.headers = headers
        super().__init__(self.description)


class BadRequest(ApiError):
    http_status = 400
    code = 21
    default_description = "invalid request"


class PayloadTooLarge(ApiError):
    http_status = 413
    code = 21
    default_description = "request body too large"


class Unauthorized(ApiError):
    http_status = 401
    code = 24
    default_description = "missing or unknown API key"


class Forbidden(ApiError):
    http_status = 403
    code = 24
    default_description = "forbidden"


class InsufficientBalance(ApiError):
    http_status = 403
    code = 25
    default_description = "insufficient balance"


class NotFound(ApiError):
    http_status = 404
    code = 21
    default_description = "task not found"


class Conflict(ApiError):
    http_status = 409
    code = 21
    default_description = "conflict"


class RateLimited(ApiError):
    http_status = 429
    code = 23
    default_description = "rate limit exceeded"


class InternalError(ApiError):
    http_status = 500
    code = 23
    default_description = "internal error"


class UpstreamFailed(ApiError):
    http_status = 502
    code = 23
    default_description = "upstream failed"


class QueueFull(ApiError):
    http_status = 503
    code = 23
    default_description = "every upstream queue is full, retry later"


class ChannelsResting(ApiError):
    http_status = 503
    code = 23
    default_description = "every channel that serves this request is resting after failures"


class Unavailable(ApiError):
    http_status = 503
    code = 23
    default_description = "service temporarily unavailable"


class NoAccount(ApiError):
    http_status = 503
    code = 24
    default_description = "no upstream account available"


class UpstreamTimeout(ApiError):
    http_status = 504
    code = 23
    default_description = "upstream timed out"


class UpstreamError(GatewayError):
    kind = "error"


class UpstreamUnreachable(UpstreamError):
    kind = "unreachable"


class UpstreamTimedOut(UpstreamError):
    kind = "timeout"


class UpstreamDisconnected(UpstreamError):
    kind = "disconnected"


class UpstreamHttpError(UpstreamError):
    kind = "http_status"

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class UpstreamBadBody(UpstreamError):
    kind = "bad_body"


class PrivateAddressError(GatewayError, OSError):
    """A URL's host is, or resolves to, an address that is not public. An OSError too, so that
    aiohttp reports it from a resolver as a connection that could not be made."""


class StartupError(GatewayError):
    """The process cannot start as configured; the message says what to change."""


class EmbeddedServerError(StartupError):
    pass


class MigrationError(StartupError):
    pass


class SealingError(StartupError):
    pass
