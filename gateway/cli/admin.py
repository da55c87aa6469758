"""``gateway admin ...``: the admin API's operations, straight in the database.

For bootstrap (the first user, key and channel, before any admin token is in use) and for
scripts. Users and channels are named by name, keys by id. Each command prints one JSON
document, in the admin API's shape (camelCase keys, ISO-8601 times); errors go to the log and
exit with status 2. Every command calls the operator's services in ``gateway.admin``; one module
per command group.
"""

from __future__ import annotations

import argparse
from typing import Any

import asyncpg

from gateway.cli import admin_channels, admin_money, admin_records, admin_users
from gateway.cli.admin_common import Command, print_result
from gateway.cli.running import with_pool
from gateway.config import Settings


def cmd_admin(settings: Settings, args: argparse.Namespace) -> None:
    async def act(pool: asyncpg.Pool) -> None:
        print_result(await args.admin_command(pool, settings, args))

    with_pool(settings, act)


def add_parser(commands: Any) -> None:
    """``gateway admin`` and its commands; each sets ``admin_command`` to its coroutine."""
    parser = commands.add_parser("admin", help="users, keys, channels, prices, money, tasks")
    parser.set_defaults(run=cmd_admin)
    sub = parser.add_subparsers(dest="admin_name", required=True)

    def command(name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
        found: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        found.set_defaults(admin_command=run)
        return found

    for group in (admin_users, admin_money, admin_channels, admin_records):
        group.register(command)
