"""``gateway media report`` and ``gateway media refetch``: what the media store holds, and
copying again what went missing from it (the running gateway's leader does the copying)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import asyncpg

from gateway.cli.running import with_pool
from gateway.config import Settings
from gateway.media.keeping import export_media_totals, refetch_missing
from gateway.media.stores import open_store


def _where(settings: Settings) -> str:
    s3 = settings.media.s3
    if s3.bucket:
        return f"s3://{s3.bucket}/{s3.prefix}"
    return str(settings.media.dir or settings.data_dir / "media")


def cmd_report(settings: Settings, args: argparse.Namespace) -> None:
    outcome: dict[str, Any] = {"store": _where(settings)}

    async def act(pool: asyncpg.Pool) -> None:
        totals = await export_media_totals(pool)
        outcome.update(
            objects=totals.objects,
            bytes=totals.bytes,
            byType={
                content_type: {"objects": objects, "bytes": size}
                for content_type, (objects, size) in totals.by_type.items()
            },
            copies=totals.copies,
        )

    with_pool(settings, act)
    print(json.dumps(outcome), flush=True)


def cmd_refetch(settings: Settings, args: argparse.Namespace) -> None:
    outcome: dict[str, Any] = {"store": _where(settings)}

    async def act(pool: asyncpg.Pool) -> None:
        store = await open_store(settings.media, settings.data_dir)
        try:
            found = await refetch_missing(pool, store)
        finally:
            await store.close()
        outcome.update(checked=found.checked, missing=found.missing, queued=found.queued)

    with_pool(settings, act)
    print(json.dumps(outcome), flush=True)


def add_parser(commands: Any) -> None:
    media = commands.add_parser("media", help="the media store: its size, and missing copies")
    actions = media.add_subparsers(dest="media_command", required=True)
    actions.add_parser(
        "report", help="objects and bytes stored, by content type; copy jobs by status"
    ).set_defaults(run=cmd_report)
    actions.add_parser(
        "refetch",
        help="look for every stored object; copy again the missing ones and the failed copies",
    ).set_defaults(run=cmd_refetch)
