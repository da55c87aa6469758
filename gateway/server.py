"""Serving the gateway over HTTP with uvicorn: in-process (tests, demo) or in worker processes.

Workers are separate processes, each with its own listening socket bound with SO_REUSEPORT to
the same address, so the kernel spreads connections across them. The parent resolves the stores
and applies migrations once; each worker receives the same settings and store URLs.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
from dataclasses import dataclass
from typing import Any

import uvicorn

from gateway import eventloop
from gateway.config import Settings
from gateway.metrics import MULTIPROC_ENV
from gateway.storage.servers import Servers


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _uvicorn_config(app: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,
        loop="none",
        http="httptools",
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )


@dataclass
class RunningServer:
    """A uvicorn server on the current event loop."""

    base_url: str
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def start_server(app: Any, sock: socket.socket) -> RunningServer:
    """Serve ``app`` on the running loop from a bound socket; returns once it accepts."""
    server = uvicorn.Server(_uvicorn_config(app))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the server stopped while starting")
        await asyncio.sleep(0.01)
    bound_host, bound_port = sock.getsockname()[:2]
    return RunningServer(f"http://{bound_host}:{bound_port}", server, task)


def _worker(settings: Settings, servers: Servers) -> None:
    from gateway.app import create_app
    from gateway.logging import configure_logging

    configure_logging(settings.log)
    sock = bind_socket(settings.server.host, settings.server.port, reuse_port=True)
    server = uvicorn.Server(_uvicorn_config(create_app(settings, servers)))
    eventloop.run(server.serve(sockets=[sock]))


def _share_metrics() -> str | None:
    """Workers write their metrics to files in one folder, so that each answers for all: a
    fresh folder of this run (returned, to be removed at exit) unless the operator named one."""
    if os.environ.get(MULTIPROC_ENV):
        return None
    folder = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    return folder


def run_workers(settings: Settings, servers: Servers) -> None:
    """Run ``settings.server.workers`` worker processes until interrupted or one dies."""
    metrics_folder = _share_metrics()
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker, args=(settings, servers), name=f"gateway-worker-{n}")
        for n in range(settings.server.workers)
    ]
    for worker in workers:
        worker.start()

    def stop(*_: object) -> None:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        multiprocessing.connection.wait([w.sentinel for w in workers])
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for worker in workers:
            worker.join(timeout=10)
        if metrics_folder is not None:
            shutil.rmtree(metrics_folder, ignore_errors=True)
