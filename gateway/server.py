"""Serving the gateway over HTTP with uvicorn: in-process (tests, demo) or in worker processes.

Workers are separate processes, each with its own listening socket bound with SO_REUSEPORT to
the same address, so the kernel spreads connections across them. The parent resolves the stores
and applies migrations once, then supervises: a worker that dies is started again (after a pause
that doubles while workers keep dying young, up to ``MAX_RESTART_PAUSE_S``), with a log line,
and counted by the replacement in ``gateway_worker_restarts_total``; the whole stops only on
SIGTERM or SIGINT. (uvicorn's own supervisor has no pause between restarts and no hook to clear
a dead worker's gauges from the metrics folder; gunicorn forks the parent, which holds the
embedded PostgreSQL and Redis, whose exit handlers would then run in every worker.)

Every connection is bounded in the server itself, not only behind a proxy: a request head
(request line and headers) longer than ``max_header_bytes`` or with more than ``max_headers``
headers is answered 431, one not received within ``header_timeout_s`` is answered 408 (a
connection that sends nothing in that time is closed), and the connection is closed.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar, cast

import msgspec
import structlog
import uvicorn
from prometheus_client import multiprocess
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway import eventloop
from gateway.config import ServerSettings, Settings
from gateway.metrics import MULTIPROC_ENV
from gateway.storage.servers import Servers

log = structlog.get_logger(__name__)

MIN_RESTART_PAUSE_S = 1.0
MAX_RESTART_PAUSE_S = 30.0
_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
_TOO_LARGE = "request headers too large or too many"


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket. Made with ``IPPROTO_TCP`` so that asyncio's loop sets
    TCP_NODELAY on the connections it accepts (it leaves protocol 0 sockets alone, and small
    writes then wait out the client's delayed ACK: 40 ms a request on a kept-alive connection)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class CoalescedWrites:
    """A connection's transport whose writes within one turn of the event loop go out together,
    in one system call: uvicorn writes a response's head and its body with a call each, and on
    a small answer the second call costs as much as the answer itself. The order of the bytes
    is kept, and a close sends what is pending first."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _HeadRefused(Exception):
    """Stops the parser once a request head is refused; its answer is already written."""


class _BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of the module docstring.

    A head is measured twice: by the bytes received while it is incomplete (from the chunk
    after the one where a request began, so a body is never counted), which stops one that
    never ends; and, once complete, by its request line and headers, which stops one that
    arrived whole in a single read."""

    max_head_bytes: ClassVar[int]
    max_headers: ClassVar[int]
    head_timeout_s: ClassVar[float]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0  # received while the head is incomplete
        self._head_size = 0  # of its request line and headers as parsed
        self._head_count = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, CoalescedWrites(transport, self.loop)))
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and not self.transport.is_closing() and self._too_large(self._head_bytes):
            self._refuse(431, _TOO_LARGE)

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():  # a refused head has had its answer
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_count += 1
        self._head_size += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._too_large(self._head_size):
            self._refuse(431, _TOO_LARGE)
            raise _HeadRefused  # stops the parser: no request is made of it
        self._in_head = False
        self._head_bytes = self._head_size = self._head_count = 0
        self._disarm_head_timer()
        super().on_headers_complete()

    def _too_large(self, size: int) -> bool:
        return size > self.max_head_bytes or self._head_count > self.max_headers

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes == 0 and self.cycle is None:
            self.transport.close()  # a connection that never sent a byte
        else:
            self._refuse(408, "request headers not received in time")

    def _refuse(self, status: int, description: str) -> None:
        self._disarm_head_timer()
        body = msgspec.json.encode({"code": 21, "description": description, "result": None})
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, _REASONS[status], len(body))
        )
        self.transport.write(head + body)
        self.transport.close()


def _protocol(limits: ServerSettings) -> type[HttpToolsProtocol]:
    return type(
        "BoundedHttpTools",
        (_BoundedHttpTools,),
        {
            "max_head_bytes": limits.max_header_bytes,
            "max_headers": limits.max_headers,
            "head_timeout_s": limits.header_timeout_s,
        },
    )


def _uvicorn_config(app: Any, limits: ServerSettings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,
        loop="none",
        http=_protocol(limits),
        proxy_headers=False,
        timeout_keep_alive=limits.keep_alive_s,
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


async def start_server(app: Any, sock: socket.socket, limits: ServerSettings) -> RunningServer:
    """Serve ``app`` on the running loop from a bound socket; returns once it accepts."""
    server = uvicorn.Server(_uvicorn_config(app, limits))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the server stopped while starting")
        await asyncio.sleep(0.01)
    bound_host, bound_port = sock.getsockname()[:2]
    return RunningServer(f"http://{bound_host}:{bound_port}", server, task)


def _worker(settings: Settings, servers: Servers, restarted: bool) -> None:
    from gateway import metrics
    from gateway.logging import configure_logging

    configure_logging(settings.log)
    if restarted:
        metrics.WORKER_RESTARTS.inc()
    from gateway.app import create_app

    sock = bind_socket(settings.server.host, settings.server.port, reuse_port=True)
    server = uvicorn.Server(_uvicorn_config(create_app(settings, servers), settings.server))
    _quiet_collector()
    eventloop.run(server.serve(sockets=[sock]))


def _quiet_collector() -> None:
    """Fewer, shorter pauses of the cycle collector while serving: what the worker has loaded by
    now (modules, the app, its routes) is moved out of its reach, and it runs after 50,000 new
    container objects rather than 700. Requests make few cycles, so this costs little memory;
    it took the bench's fetch p99 from 49-65 ms to 35-41 ms (64 connections, 2 workers)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _share_metrics() -> str | None:
    """Workers write their metrics to files in one folder, so that each answers for all: a
    fresh folder of this run (returned, to be removed at exit) unless the operator named one."""
    if os.environ.get(MULTIPROC_ENV):
        return None
    folder = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    return folder


@dataclass
class _Slot:
    """One worker's place: its process, when it started, and the pause before a restart."""

    number: int
    process: BaseProcess
    started_at: float
    pause_s: float = 0.0  # before its last restart; 0 while it never died
    restart_at: float | None = None


def run_workers(settings: Settings, servers: Servers) -> None:
    """Run ``settings.server.workers`` worker processes, restarting any that dies, until
    SIGTERM or SIGINT."""
    metrics_folder = _share_metrics()
    context = multiprocessing.get_context("spawn")

    def spawn(number: int, restarted: bool) -> BaseProcess:
        process = context.Process(
            target=_worker, args=(settings, servers, restarted), name=f"gateway-worker-{number}"
        )
        process.start()
        return process

    slots = [_Slot(n, spawn(n, False), time.monotonic()) for n in range(settings.server.workers)]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping:
            now = time.monotonic()
            for slot in slots:
                if slot.restart_at is None and not slot.process.is_alive():
                    _note_death(slot, now)
                elif slot.restart_at is not None and slot.restart_at <= now:
                    slot.process = spawn(slot.number, True)
                    slot.started_at, slot.restart_at = now, None
            due = [s.restart_at for s in slots if s.restart_at is not None]
            timeout_s = max(0.0, min(due) - now) if due else 1.0
            alive = [s.process.sentinel for s in slots if s.restart_at is None]
            multiprocessing.connection.wait(alive, timeout=min(timeout_s, 1.0))
    finally:
        for slot in slots:
            if slot.process.is_alive():
                slot.process.terminate()
        for slot in slots:
            slot.process.join(timeout=10)
        if metrics_folder is not None:
            shutil.rmtree(metrics_folder, ignore_errors=True)


def _note_death(slot: _Slot, now: float) -> None:
    """A worker died: clear its live gauges, and restart it after a pause of
    ``MIN_RESTART_PAUSE_S``, doubled at each death within ``MAX_RESTART_PAUSE_S`` of its start
    (up to that)."""
    pid = slot.process.pid
    if pid is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
    lived_s = now - slot.started_at
    died_young = slot.pause_s > 0 and lived_s < MAX_RESTART_PAUSE_S
    slot.pause_s = min(MAX_RESTART_PAUSE_S, slot.pause_s * 2) if died_young else MIN_RESTART_PAUSE_S
    slot.restart_at = now + slot.pause_s
    log.error(
        "worker_died",
        worker=slot.number,
        pid=pid,
        exit_code=slot.process.exitcode,
        lived_s=round(lived_s, 1),
        restart_in_s=slot.pause_s,
    )
