"""What every ``gateway admin`` command group shares: the command type, option helpers, and the
one way a result is printed."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from gateway import admin
from gateway.admin import as_json
from gateway.config import Settings

Command = Callable[[asyncpg.Pool, Settings, argparse.Namespace], Awaitable[Any]]
Register = Callable[[str, Command, str], argparse.ArgumentParser]
"""Adds ``gateway admin NAME`` running the command, with its help text; returns its parser."""


def csv(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


async def optional_user_id(pool: asyncpg.Pool, name: str | None) -> int | None:
    return await admin.user_id_by_name(pool, name) if name is not None else None


def page(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--before", type=int, help="page back: ids below this one")
    parser.add_argument("--limit", type=int, default=100, help=f"rows, at most {admin.MAX_PAGE}")


def rate_limit_options(parser: argparse.ArgumentParser) -> None:
    """Both limits are set together: one left out is no limit of that kind."""
    parser.add_argument("--rpm", type=int, help="requests per minute (default no limit)")
    parser.add_argument("--max-open-tasks", type=int, help="unfinished tasks (default no limit)")


def print_result(result: Any) -> None:
    print(json.dumps(as_json(result), default=str), flush=True)
