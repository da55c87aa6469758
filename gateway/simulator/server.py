"""Serving the simulator: in-process on the running loop (``start_simulator``, for tests and
benchmarks) or blocking until interrupted (``run_simulator``, for ``gateway simulate``)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal

import structlog
from aiohttp import web

from gateway import eventloop
from gateway.config import SimulatorSettings
from gateway.simulator.app import create_simulator_app
from gateway.simulator.engine import Engine
from gateway.simulator.plumbing import ENGINE

SHUTDOWN_TIMEOUT_S = 1.0
"""How long stop() lets in-flight requests (e.g. a slow answer) finish."""

log = structlog.get_logger(__name__)


class RunningSimulator:
    """A simulator serving on ``base_url`` until ``stop()``."""

    def __init__(self, settings: SimulatorSettings, base_url: str, runner: web.AppRunner) -> None:
        self.settings = settings
        self.base_url = base_url
        self._runner = runner

    @property
    def engine(self) -> Engine:
        """The simulated proxy itself, for tests that want to look inside."""
        return self._runner.app[ENGINE]

    async def stop(self) -> None:
        """Stop serving, cancel every task timer, close the callback session. Idempotent."""
        await self._runner.cleanup()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def start_simulator(settings: SimulatorSettings) -> RunningSimulator:
    """Bind ``settings.host:settings.port`` (0 = any free port) and serve on the running loop."""
    app = create_simulator_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = runner.addresses[0][1]
    base_url = f"http://{_url_host(settings.host)}:{port}"
    if settings.public_base_url is None:
        app[ENGINE].urls.base = base_url
    return RunningSimulator(settings, base_url, runner)


def _young_collections_only() -> None:
    """The cycle collector never walks the whole heap on its own: it only collects the young
    generations. The simulator keeps up to 100,000 tasks (about 1.5 million objects), which live
    until evicted and whose ends leave no cycles, so a full collection finds nothing and pauses
    everything for 0.3-0.6 s, about every 5 s at 3,000 submits/s. Answered straight by wrk, it
    made one submit in a hundred wait 190-770 ms at one connection; without it the p99 is 2-3 ms,
    and at 64 connections the simulator takes 5,200 submits/s instead of 3,300-3,400."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(700, 10, 1_000_000_000)


def run_simulator(settings: SimulatorSettings) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly."""

    async def serve() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stopping.set)
        simulator = await start_simulator(settings)
        log.info(
            "simulator_started",
            base_url=simulator.base_url,
            accounts=settings.accounts,
            speed_factor=settings.speed_factor,
        )
        try:
            await stopping.wait()
        finally:
            await simulator.stop()
            log.info("simulator_stopped")

    _young_collections_only()
    with contextlib.suppress(KeyboardInterrupt):
        eventloop.run(serve())
