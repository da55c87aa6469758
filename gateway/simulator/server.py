"""Serving the simulator: in-process on the running loop (``start_simulator``, for tests and
benchmarks) or blocking until interrupted (``run_simulator``, for ``gateway simulate``)."""

from __future__ import annotations

import asyncio
import contextlib
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

    with contextlib.suppress(KeyboardInterrupt):
        eventloop.run(serve())
