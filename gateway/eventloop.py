"""Running a coroutine to completion on uvloop where it is installed, else on asyncio's loop, and
giving the loop its turns during long work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # not built for every platform (pyproject.toml)
        return asyncio.run(coro)
    return uvloop.run(coro)


async def in_turns(items: Iterable[T], per_turn: int) -> AsyncIterator[T]:
    """``items`` one by one, the event loop given a turn after every ``per_turn`` of them. A
    process answers requests on the loop that also runs its background work: a poll's hundred
    task objects read in one go would keep every request that arrives meanwhile waiting for
    all of them (some 3 ms), where in turns it waits for ``per_turn`` at most."""
    for count, item in enumerate(items, 1):
        yield item
        if count % per_turn == 0:
            await asyncio.sleep(0)
