"""The ``gateway`` command: the one place settings are read. One module per command group:

gateway serve      run the gateway (``--workers N`` processes)         cli/running.py
gateway migrate    apply pending migrations                            cli/running.py
gateway simulate   run the midjourney-proxy simulator alone            cli/running.py
gateway reconcile  check that the money adds up; exit 1 on any gap     cli/running.py
gateway bench      submits/s, fetches/s and latency                    cli/running.py
gateway demo       embedded stores, a simulator channel, a demo user   cli/demo.py
gateway admin ...  users, keys, channels and money, in the database    cli/admin*.py
gateway media ...  the media store's size; copying again what is missing cli/media.py
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import structlog

from gateway.cli import admin, demo, media, running
from gateway.config import Settings
from gateway.errors import ApiError, StartupError
from gateway.logging import configure_logging

log = structlog.get_logger("gateway")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="A metered relay for /mj.")
    commands = parser.add_subparsers(dest="command", required=True)
    running.add_parsers(commands)
    demo.add_parser(commands)
    admin.add_parser(commands)
    media.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log)
    try:
        args.run(settings, args)
    except (StartupError, ApiError) as exc:
        log.error("command_failed", error=str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        pass
