"""The price book in SQL: base prices by priced action, speed-mode ratios, and user groups."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


async def load_price_book(pool: asyncpg.Pool) -> tuple[dict[str, int], dict[str, int]]:
    """(base price by priced action, mode ratio in basis points by mode)."""
    prices = await pool.fetch("SELECT action, price_units FROM prices")
    modes = await pool.fetch("SELECT mode, ratio_bp FROM mode_ratios")
    return (
        {row["action"]: row["price_units"] for row in prices},
        {row["mode"]: row["ratio_bp"] for row in modes},
    )


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    ratio_bp: int
    description: str


async def groups(pool: asyncpg.Pool) -> list[Group]:
    rows = await pool.fetch("SELECT name, ratio_bp, description FROM user_groups ORDER BY name")
    return [Group(**dict(row)) for row in rows]


async def set_price(pool: asyncpg.Pool, action: str, price_units: int) -> None:
    await pool.execute(
        "INSERT INTO prices (action, price_units) VALUES ($1, $2)"
        " ON CONFLICT (action) DO UPDATE SET price_units = $2, updated_at = now()",
        action,
        price_units,
    )


async def set_mode_ratio(pool: asyncpg.Pool, mode: str, ratio_bp: int) -> None:
    await pool.execute(
        "INSERT INTO mode_ratios (mode, ratio_bp) VALUES ($1, $2)"
        " ON CONFLICT (mode) DO UPDATE SET ratio_bp = $2",
        mode,
        ratio_bp,
    )


async def set_group(pool: asyncpg.Pool, name: str, ratio_bp: int, description: str | None) -> None:
    """Create the group, or change its ratio (and its description, when given)."""
    await pool.execute(
        "INSERT INTO user_groups (name, ratio_bp, description) VALUES ($1, $2, coalesce($3, ''))"
        " ON CONFLICT (name) DO UPDATE"
        " SET ratio_bp = $2, description = coalesce($3, user_groups.description)",
        name,
        ratio_bp,
        description,
    )


async def set_user_group(pool: asyncpg.Pool, user_id: int, group: str) -> bool:
    """False if there is no such user; ForeignKeyViolationError if there is no such group."""
    updated: str = await pool.execute(
        "UPDATE users SET group_name = $2, updated_at = now() WHERE id = $1", user_id, group
    )
    return updated != "UPDATE 0"
