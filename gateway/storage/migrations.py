"""Forward-only plain-SQL migrations.

Files are named ``NNNN_description.sql`` and applied in version order, each in its own
transaction, under a PostgreSQL advisory lock so that replicas starting together apply each file
once. ``schema_migrations`` records every applied version with the SHA-256 of its file; a file
changed after it was applied, or a version the database has but this build does not, stops
everything before any SQL runs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from gateway.errors import MigrationError

ADVISORY_LOCK_KEY = 0x6D6A_6777_6D69_6772  # "mjgwmigr"
Connection = asyncpg.Connection | PoolConnectionProxy
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    """Every migration file in ``directory``, by version; other names are an error."""
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"migration file name not of the form NNNN_name.sql: {path.name}")
        migrations.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version in {directory}")
    return migrations


async def _applied(conn: Connection) -> dict[int, str]:
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {row["version"]: row["checksum"] for row in rows}


def _verify(migrations: list[Migration], applied: dict[int, str]) -> list[Migration]:
    """The migrations still to apply; raises if the database disagrees with the files."""
    known = {m.version: m for m in migrations}
    unknown = sorted(set(applied) - set(known))
    if unknown:
        raise MigrationError(f"database has migrations this build does not know: {unknown}")
    for version, checksum in applied.items():
        if known[version].checksum != checksum:
            raise MigrationError(
                f"migration {version:04d}_{known[version].name} changed after it was applied"
            )
    return [m for m in migrations if m.version not in applied]


async def apply_migrations(conn: Connection, directory: Path) -> list[Migration]:
    """Apply every pending migration; returns those applied now (empty when up to date)."""
    migrations = load_migrations(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        pending = _verify(migrations, await _applied(conn))
        for migration in pending:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
        return pending
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)


async def pending_migrations(conn: Connection, directory: Path) -> list[Migration]:
    """Migrations not yet applied, without applying them; raises on a checksum mismatch."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    applied = await _applied(conn) if exists else {}
    return _verify(load_migrations(directory), applied)
