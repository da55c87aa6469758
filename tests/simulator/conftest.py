"""Fixtures of the simulator conformance suite: a client on the default simulator, a receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.simulator import RunningSimulator
from tests.simulator.helpers import CallbackReceiver, connect


@pytest.fixture
async def client(simulator: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the right secret on the default simulator."""
    async with connect(simulator) as http:
        yield http


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    """A callback receiver on 127.0.0.1, stopped after the test."""
    hooks = CallbackReceiver()
    await hooks.start()
    yield hooks
    await hooks.stop()
