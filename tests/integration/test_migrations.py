"""Migrations against a real PostgreSQL: from empty, idempotent, concurrent, and guarded."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from gateway import admin
from gateway.config import default_migrations_dir
from gateway.domain import KeySettings
from gateway.errors import MigrationError
from gateway.storage.migrations import apply_migrations, load_migrations, pending_migrations

RELAY_TABLES = {
    "user_groups",
    "users",
    "api_keys",
    "prices",
    "mode_ratios",
    "channels",
    "tasks",
    "holds",
    "ledger",
    "idempotency_keys",
    "upstream_claims",
    "webhook_outbox",
    "media_copies",
    "media_objects",
    "console_invitations",
    "tasks_archive",
    "schema_migrations",
}


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), folder)
    return folder


async def _tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


async def test_apply_from_empty_creates_the_relay_schema(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        applied = await apply_migrations(conn, default_migrations_dir())
        assert [m.version for m in applied] == [
            m.version for m in load_migrations(default_migrations_dir())
        ]
        assert await _tables(conn) == RELAY_TABLES
        recorded = await conn.fetch(
            "SELECT version, checksum FROM schema_migrations ORDER BY version"
        )
        assert [(r["version"], r["checksum"]) for r in recorded] == [
            (m.version, m.checksum) for m in applied
        ]
        assert await apply_migrations(conn, default_migrations_dir()) == []
        assert await pending_migrations(conn, default_migrations_dir()) == []
    finally:
        await conn.close()


async def test_pending_lists_unapplied_files_without_applying(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        pending = await pending_migrations(conn, default_migrations_dir())
        files = sorted(default_migrations_dir().glob("*.sql"))
        assert [m.version for m in pending] == [int(path.name[:4]) for path in files]
        assert await _tables(conn) == set()
    finally:
        await conn.close()


def _next_file(folder: Path, name: str) -> Path:
    """A migration file numbered after every file in ``folder`` (numbers may have gaps)."""
    last = max(int(path.name[:4]) for path in folder.glob("*.sql"))
    return folder / f"{last + 1:04d}_{name}.sql"


async def test_changed_file_is_refused_before_any_sql_runs(
    empty_database_url: str, migrations_copy: Path
) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        await apply_migrations(conn, migrations_copy)
        first = migrations_copy / "0001_init.sql"
        first.write_text(first.read_text() + "\n-- edited\n")
        _next_file(migrations_copy, "more").write_text("CREATE TABLE must_not_exist (id INT);")
        with pytest.raises(MigrationError, match="0001_init changed after it was applied"):
            await apply_migrations(conn, migrations_copy)
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await pending_migrations(conn, migrations_copy)
        assert "must_not_exist" not in await _tables(conn)
    finally:
        await conn.close()


async def test_database_newer_than_the_files_is_refused(
    empty_database_url: str, migrations_copy: Path
) -> None:
    extra = _next_file(migrations_copy, "extra")
    extra.write_text("CREATE TABLE extra (id INT);")
    conn = await asyncpg.connect(empty_database_url)
    try:
        await apply_migrations(conn, migrations_copy)
        extra.unlink()
        version = int(extra.name[:4])
        with pytest.raises(MigrationError, match=rf"does not know: \[{version}\]"):
            await apply_migrations(conn, migrations_copy)
    finally:
        await conn.close()


async def test_failing_file_rolls_back_alone(
    empty_database_url: str, migrations_copy: Path
) -> None:
    landed = [m.version for m in load_migrations(migrations_copy)]
    broken = _next_file(migrations_copy, "broken")
    broken.write_text("CREATE TABLE half_done (id INT); SELECT no_such_function();")
    conn = await asyncpg.connect(empty_database_url)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await apply_migrations(conn, migrations_copy)
        versions = await conn.fetch("SELECT version FROM schema_migrations")
        assert sorted(r["version"] for r in versions) == landed
        assert "half_done" not in await _tables(conn)
        assert "users" in await _tables(conn)
    finally:
        await conn.close()


async def test_concurrent_runners_apply_each_file_once(empty_database_url: str) -> None:
    conns = [await asyncpg.connect(empty_database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(apply_migrations(conn, default_migrations_dir()) for conn in conns)
        )
        files = len(load_migrations(default_migrations_dir()))
        assert sorted(len(applied) for applied in results) == [0, 0, 0, files]
        count = await conns[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert count == files
    finally:
        for conn in conns:
            await conn.close()


def test_file_names_must_carry_a_version(migrations_copy: Path) -> None:
    (migrations_copy / "notes.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql: notes\.sql"):
        load_migrations(migrations_copy)


async def test_task_ids_are_16_digit_and_javascript_safe(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        ids = [await conn.fetchval("SELECT next_task_id()") for _ in range(2000)]
    finally:
        await conn.close()
    assert len(set(ids)) == len(ids)
    assert all(len(str(i)) == 16 and i < 2**53 for i in ids)


async def test_balance_can_never_go_negative(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        user_id = await conn.fetchval(
            "INSERT INTO users (name, balance_units, webhook_secret)"
            " VALUES ('u', 10, 's') RETURNING id"
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE users SET balance_units = balance_units - 11 WHERE id = $1", user_id
            )
        prices = dict(await conn.fetch("SELECT action, price_units FROM prices"))
        assert prices["mj_imagine"] == 100_000
        assert prices["mj_upscale"] == 50_000
        assert prices["mj_custom_zoom"] == 0
    finally:
        await conn.close()


async def test_users_and_keys_are_never_deleted(db_pool: asyncpg.Pool) -> None:
    user_id = await admin.create_user(db_pool, "dave", 5)
    await admin.issue_key(db_pool, user_id, KeySettings(name="k"))
    for table in ("api_keys", "users"):
        with pytest.raises(asyncpg.RaiseError, match=f"{table} rows are never deleted"):
            await db_pool.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
    assert await db_pool.fetchval("SELECT count(*) FROM api_keys WHERE user_id = $1", user_id) == 1


async def test_the_task_archive_has_the_columns_of_tasks_in_their_order(
    db_pool: asyncpg.Pool,
) -> None:
    columns = (
        "SELECT array_agg((attname, format_type(atttypid, atttypmod), attnotnull)::TEXT"
        " ORDER BY attnum) FROM pg_attribute"
        " WHERE attrelid = $1::REGCLASS AND attnum > 0 AND NOT attisdropped"
    )
    tasks = await db_pool.fetchval(columns, "tasks")
    assert len(tasks) > 20
    assert await db_pool.fetchval(columns, "tasks_archive") == tasks
