"""``gateway admin`` records: tasks and the ledger, searched, newest first."""

from __future__ import annotations

import argparse
from typing import Any

import asyncpg

from gateway import admin
from gateway.cli.admin_common import Register, optional_user_id, page
from gateway.config import Settings


async def tasks(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    channel_id = await admin.channel_id_by_name(pool, args.channel) if args.channel else None
    search = admin.TaskSearch(
        user_id=await optional_user_id(pool, args.user),
        api_key_id=args.key_id,
        channel_id=channel_id,
        status=args.status,
        since_ms=admin.epoch_ms(admin.instant("--since", args.since)),
        until_ms=admin.epoch_ms(admin.instant("--until", args.until)),
        before_id=args.before,
        limit=args.limit,
    )
    return {"tasks": [admin.task_record(task) for task in await admin.search_tasks(pool, search)]}


async def ledger(pool: asyncpg.Pool, _: Settings, args: argparse.Namespace) -> Any:
    search = admin.LedgerSearch(
        user_id=await optional_user_id(pool, args.user),
        api_key_id=args.key_id,
        kind=args.kind,
        since=admin.instant("--since", args.since),
        until=admin.instant("--until", args.until),
        before_id=args.before,
        limit=args.limit,
    )
    return {"entries": await admin.ledger(pool, search)}


def register(command: Register) -> None:
    found = command("tasks", tasks, "search tasks, newest first")
    found.add_argument("--user", help="user name")
    found.add_argument("--key-id", type=int)
    found.add_argument("--channel", help="channel name")
    found.add_argument("--status", choices=admin.TASK_STATUSES)
    found.add_argument("--since", help="submitted at or after (ISO-8601)")
    found.add_argument("--until", help="submitted before (ISO-8601)")
    page(found)
    rows = command("ledger", ledger, "ledger rows, newest first")
    rows.add_argument("--user", help="user name")
    rows.add_argument("--key-id", type=int)
    rows.add_argument("--kind", choices=admin.LEDGER_KINDS)
    rows.add_argument("--since", help="at or after (ISO-8601)")
    rows.add_argument("--until", help="before (ISO-8601)")
    page(rows)
