"""Callbacks to a task's notifyHook: one POST of the task JSON per change, fire-and-forget.

Like the proxies: no retry, no ordering guarantee, failures only logged. Posting never delays
the lifecycle: each POST is its own asyncio task, all cancelled by ``close``.
"""

from __future__ import annotations

import asyncio

import aiohttp
import structlog

CALLBACK_TIMEOUT_S = 10.0

log = structlog.get_logger(__name__)


class Notifier:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._closed = False

    def post(self, url: str, body: bytes) -> None:
        """Schedule one POST of ``body`` (JSON) to ``url``; returns at once."""
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._send(url, body))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _send(self, url: str, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_S)
            )
        try:
            async with self._session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            log.debug("simulator_callback_failed", url=url, error=repr(error))

    async def close(self) -> None:
        """Cancel the POSTs still in flight and close the HTTP session."""
        self._closed = True
        in_flight = list(self._in_flight)
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
