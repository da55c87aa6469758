"""Which PostgreSQL and Redis the process uses: the configured URLs, or embedded servers.

``open_servers`` is called once at start by the CLI; it starts an embedded server only for a store
whose URL is unset, and says on stdout which one each store is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Literal

import structlog

from gateway.config import Settings
from gateway.errors import EmbeddedServerError
from gateway.storage import embedded

log = structlog.get_logger(__name__)

ServerKind = Literal["external", "embedded"]


@dataclass(frozen=True)
class Servers:
    database_url: str
    redis_url: str
    database_kind: ServerKind
    redis_kind: ServerKind


def redact_url(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


@contextmanager
def open_servers(settings: Settings) -> Iterator[Servers]:
    """Resolve both stores; embedded ones stop (for this process) when the block exits."""
    with ExitStack() as stack:
        database = settings.database.url
        redis = settings.redis.url
        database_kind: ServerKind
        redis_kind: ServerKind
        try:
            if database is None:
                pg = embedded.start_postgres(settings.data_dir)
                stack.callback(pg.stop)
                database_url, database_kind = pg.url, "embedded"
            else:
                database_url, database_kind = database.get_secret_value(), "external"
            if redis is None:
                rd = embedded.start_redis(settings.data_dir)
                stack.callback(rd.stop)
                redis_url, redis_kind = rd.url, "embedded"
            else:
                redis_url, redis_kind = redis.get_secret_value(), "external"
        except (OSError, RuntimeError, ImportError) as exc:
            raise EmbeddedServerError(f"could not start an embedded server: {exc}") from exc
        servers = Servers(database_url, redis_url, database_kind, redis_kind)
        log.info(
            "stores_resolved",
            database=database_kind,
            database_url=redact_url(database_url),
            redis=redis_kind,
            redis_url=redact_url(redis_url),
        )
        yield servers
