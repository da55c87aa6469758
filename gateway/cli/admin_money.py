"""``gateway admin`` money: top-ups and adjustments, a key's spend limit, and the price book
(prices, speed-mode ratios, groups)."""

from __future__ import annotations

import argparse
from typing import Any

import asyncpg

from gateway import admin
from gateway.cli.admin_common import Register
from gateway.config import Settings


async def _credit(pool: asyncpg.Pool, args: argparse.Namespace, kind: str) -> Any:
    user_id = await admin.user_id_by_name(pool, args.user)
    done = await admin.credit(
        pool, user_id, args.units, kind=kind, reason=args.reason, reference=args.reference
    )
    return {"applied": done.applied, "balanceUnits": done.balance_units, "source": done.source}


async def topup(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    return await _credit(pool, args, "TOPUP")


async def adjust(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    return await _credit(pool, args, "ADJUST")


async def key_limit(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    limit = None if args.units == "unlimited" else int(args.units)
    await admin.set_key_limit(pool, args.key_id, limit, args.reason)
    return {"keyId": args.key_id, "limitUnits": limit}


async def prices(pool: asyncpg.Pool, _: Settings, __: argparse.Namespace) -> Any:
    book = await admin.price_list(pool)
    return {
        "pricesUnits": book.prices_units,
        "modeRatiosBp": book.mode_ratios_bp,
        "groups": book.groups,
    }


async def price_set(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    await admin.set_price(pool, args.action, args.units)
    return {"action": args.action, "units": args.units}


async def mode_ratio_set(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    await admin.set_mode_ratio(pool, args.mode, args.ratio_bp)
    return {"mode": args.mode, "ratioBp": args.ratio_bp}


async def group_set(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    await admin.set_group(pool, args.name, args.ratio_bp, args.description)
    return {"name": args.name, "ratioBp": args.ratio_bp}


def register(command: Register) -> None:
    for name, run, help_text in (
        ("topup", topup, "add to a user's balance (a TOPUP ledger row)"),
        ("adjust", adjust, "correct a user's balance, either way (an ADJUST ledger row)"),
    ):
        credit = command(name, run, help_text)
        credit.add_argument("user", help="user name")
        credit.add_argument("units", type=int, help="quota units (adjust: negative takes away)")
        credit.add_argument("--reason", required=True, help="why, kept in the ledger")
        credit.add_argument(
            "--reference", help="a payment or ticket id: the same one never moves money twice"
        )

    limit = command("key-limit", key_limit, "set what a key may still spend (or unlimited)")
    limit.add_argument("key_id", type=int)
    limit.add_argument("units", help="quota units, or 'unlimited'")
    limit.add_argument("--reason", default="key limit set", help="kept in the ledger")

    command("prices", prices, "the price book: prices, mode ratios, groups")
    price = command("price-set", price_set, "set the base price of a priced action")
    price.add_argument("action", help="e.g. mj_imagine")
    price.add_argument("units", type=int)
    mode = command("mode-ratio-set", mode_ratio_set, "set a speed mode's multiplier")
    mode.add_argument("mode", choices=admin.MODES)
    mode.add_argument("ratio_bp", type=int, help="basis points, 10000 = x1")
    group = command("group-set", group_set, "create a user group or change its ratio")
    group.add_argument("name")
    group.add_argument("ratio_bp", type=int, help="basis points, 10000 = x1")
    group.add_argument("--description")
