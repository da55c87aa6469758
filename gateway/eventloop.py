"""Running a coroutine to completion on uvloop where it is installed, else on asyncio's loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # not built for every platform (pyproject.toml)
        return asyncio.run(coro)
    return uvloop.run(coro)
