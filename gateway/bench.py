"""``gateway bench``: submits/s, fetches/s and latency through the gateway, and straight upstream.

What it measures: four phases of ``--duration`` seconds each, in a closed loop with
``--concurrency`` connections (each sends its next request when the previous one is answered):

    upstream submit   POST /mj/submit/imagine straight to the simulator (with mj-api-secret)
    upstream fetch    GET  /mj/task/{id}/fetch straight to the simulator, ids of that phase
    gateway submit    POST /mj/submit/imagine through the gateway: auth, hold, upstream, settle
    gateway fetch     GET  /mj/task/{id}/fetch through the gateway (one row from PostgreSQL)

Only an HTTP 200 with the expected body counts as a success (a submit: code 1 or 22 and a task
id; a fetch: the asked id); anything else, timeouts and transport errors included, is an error.
The gateway's share of a submit is its p50 minus the simulator's p50.

How: the stores are resolved like every command does (configured URLs, else embedded servers);
a throw-away database ``gw_bench_<pid>`` is created on that PostgreSQL, migrated and seeded with
a user, a key and one channel, and dropped at the end. The simulator (``gateway simulate``, speed
x1000, slots enough to never be full) and the gateway (``gateway serve --workers N``) run as
subprocesses and are always stopped. The load generator runs here, on uvloop when available,
with one aiohttp session, pre-encoded bodies and latencies in a preallocated list; each phase
starts with a warm-up whose requests are not counted. Latency percentiles are of successes only.
The command exits 1 when any phase has more than 1% errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from yarl import URL

from gateway import admin
from gateway.config import Settings
from gateway.errors import StartupError
from gateway.storage.migrations import apply_migrations
from gateway.storage.servers import Servers, open_servers, redact_url

SIM_SPEED = 1000
SIM_ACCOUNTS = 8
SIM_SLOTS_PER_ACCOUNT = 100_000  # core and queue size: the simulator never answers "queue full"
BALANCE_UNITS = 10**15
MAX_WARMUP_S = 2.0
FETCH_IDS_MAX = 20_000  # newest ids of a submit phase; the simulator evicts old finished tasks
PREALLOCATED_PER_S = 20_000  # latency slots per second of a phase; the list grows past it
ERROR_RATE_LIMIT = 0.01
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 30.0
TARGETS_PER_S = {"gateway submit": 1_000.0, "gateway fetch": 4_000.0}
SUBMIT_BODY = json.dumps({"prompt": "a lighthouse at dawn, volumetric light --ar 3:2"}).encode()
ACCEPTED_CODES = frozenset({1, 22})
T = TypeVar("T")
Call = Callable[[int], Awaitable[str | None]]
"""One request (its argument: the request's sequence number); None or an error label."""


@dataclass(frozen=True)
class PhaseResult:
    name: str
    measured_s: float
    latencies_s: list[float]  # successes only, sorted
    errors: Counter[str]

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float:
        total = len(self.latencies_s) + self.error_count
        return self.error_count / total if total else 1.0

    @property
    def per_s(self) -> float:
        return len(self.latencies_s) / self.measured_s if self.measured_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile of the successes' latency; NaN when there were none."""
        if not self.latencies_s:
            return float("nan")
        rank = min(len(self.latencies_s) - 1, max(0, round(q / 100 * len(self.latencies_s)) - 1))
        return self.latencies_s[rank] * 1000


class _Recorder:
    """Latencies of one phase in a preallocated list, filled in order; error labels counted."""

    __slots__ = ("count", "errors", "latencies_s", "sequence")

    def __init__(self, capacity: int) -> None:
        self.latencies_s = [0.0] * capacity
        self.count = 0
        self.sequence = 0
        self.errors: Counter[str] = Counter()

    def add(self, latency_s: float) -> None:
        if self.count < len(self.latencies_s):
            self.latencies_s[self.count] = latency_s
        else:
            self.latencies_s.append(latency_s)
        self.count += 1


async def _worker(call: Call, recorder: _Recorder, start: float, end: float) -> None:
    """Send requests one after another until ``end``; count those started after ``start``."""
    clock = time.perf_counter
    while True:
        began = clock()
        if began >= end:
            return
        sequence = recorder.sequence
        recorder.sequence += 1
        try:
            error = await call(sequence)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            error = type(exc).__name__
        if began < start:
            continue
        if error is None:
            recorder.add(clock() - began)
        else:
            recorder.errors[error] += 1


async def _phase(
    name: str, call: Call, concurrency: int, duration_s: float, warmup_s: float
) -> PhaseResult:
    recorder = _Recorder(int(duration_s * PREALLOCATED_PER_S) + 1024)
    start = time.perf_counter() + warmup_s
    end = start + duration_s
    await asyncio.gather(*(_worker(call, recorder, start, end) for _ in range(concurrency)))
    measured_s = time.perf_counter() - start
    latencies = sorted(recorder.latencies_s[: recorder.count])
    return PhaseResult(name, measured_s, latencies, recorder.errors)


def _submit_call(
    session: aiohttp.ClientSession, url: URL, headers: dict[str, str], ids: list[str]
) -> Call:
    async def call(_: int) -> str | None:
        async with session.post(url, data=SUBMIT_BODY, headers=headers) as response:
            raw = await response.read()
            status = response.status
        if status != 200:
            return f"HTTP {status}"
        try:
            answer = json.loads(raw)
        except ValueError:
            return "answer not JSON"
        code = answer.get("code") if isinstance(answer, dict) else None
        if code not in ACCEPTED_CODES:
            return f"code {code}"
        result = answer.get("result")
        if not result:
            return "no task id"
        ids.append(str(result))
        return None

    return call


def _fetch_call(
    session: aiohttp.ClientSession, base_url: str, headers: dict[str, str], ids: list[str]
) -> Call:
    targets = [
        (URL(f"{base_url}/mj/task/{task_id}/fetch", encoded=True), f'"id":"{task_id}"'.encode())
        for task_id in ids[-FETCH_IDS_MAX:]
    ]

    async def call(sequence: int) -> str | None:
        if not targets:
            return "no task ids from the submit phase"
        url, expected = targets[sequence % len(targets)]
        async with session.get(url, headers=headers) as response:
            raw = await response.read()
            status = response.status
        if status != 200:
            return f"HTTP {status}"
        return None if expected in raw else "unexpected body"

    return call


@dataclass(frozen=True)
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@contextlib.contextmanager
def _child(name: str, argv: list[str], env: dict[str, str], log_path: Path) -> Iterator[_Child]:
    """A subprocess in its own session; SIGTERM at exit, SIGKILL of its group if it lingers."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "gateway", *argv],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield _Child(name, process, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


async def _answers(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> bool:
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
        timeout = aiohttp.ClientTimeout(total=READY_TIMEOUT_S)
        async with session.get(url, headers=headers, timeout=timeout) as response:
            return response.status == 200
    return False


async def _wait_ready(
    session: aiohttp.ClientSession, child: _Child, url: str, headers: dict[str, str], fresh: int
) -> None:
    """Until ``url`` answers 200, then once more on ``fresh`` new connections at once, so that
    every worker process behind a shared port is serving."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not await _answers(session, url, headers):
        if child.process.poll() is not None:
            raise StartupError(f"{child.name} exited ({child.process.returncode}):\n{child.tail()}")
        if time.monotonic() > deadline:
            raise StartupError(f"{child.name} did not answer {url} in time:\n{child.tail()}")
        await asyncio.sleep(0.1)
    closing = {**headers, "Connection": "close"}
    checks = await asyncio.gather(*(_answers(session, url, closing) for _ in range(fresh)))
    if not all(checks):
        raise StartupError(f"{child.name} answers {url} only sometimes:\n{child.tail()}")


async def _load(
    children: dict[str, _Child], urls: dict[str, str], key: str, secret: str, args: Any
) -> list[PhaseResult]:
    """The four phases on one session; results in table order (gateway first)."""
    concurrency: int = args.concurrency
    warmup_s = min(MAX_WARMUP_S, args.duration / 5)
    sim, gw = urls["simulator"], urls["gateway"]
    sim_get, gw_get = {"mj-api-secret": secret}, {"Authorization": f"Bearer {key}"}
    sim_post = {**sim_get, "Content-Type": "application/json"}
    gw_post = {**gw_get, "Content-Type": "application/json"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:
        await _wait_ready(session, children["simulator"], f"{sim}/sim/health", sim_get, 4)
        await _wait_ready(session, children["gateway"], f"{gw}/healthz", {}, 8 * args.workers)

        async def phase(name: str, call: Call) -> PhaseResult:
            print(f"  {name} ...", file=sys.stderr, flush=True)
            return await _phase(name, call, concurrency, args.duration, warmup_s)

        sim_ids: list[str] = []
        gw_ids: list[str] = []
        submit = "/mj/submit/imagine"
        sim_submit = await phase(
            "upstream submit", _submit_call(session, URL(sim + submit), sim_post, sim_ids)
        )
        sim_fetch = await phase("upstream fetch", _fetch_call(session, sim, sim_get, sim_ids))
        gw_submit = await phase(
            "gateway submit", _submit_call(session, URL(gw + submit), gw_post, gw_ids)
        )
        gw_fetch = await phase("gateway fetch", _fetch_call(session, gw, gw_get, gw_ids))
    return [gw_submit, gw_fetch, sim_submit, sim_fetch]


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _seed(settings: Settings, database_url: str, simulator_url: str, secret: str) -> str:
    """Migrate the bench database; a rich user, its API key (returned) and the channel."""
    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn, settings.migrations_dir)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        user_id = await admin.create_user(pool, "bench", BALANCE_UNITS)
        key = (await admin.issue_key(pool, user_id, name="bench")).key
        await admin.add_channel(pool, "simulator", simulator_url, secret)
    finally:
        await pool.close()
    return key


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _bench(
    settings: Settings, servers: Servers, database_url: str, prefix: str, args: Any
) -> list[PhaseResult]:
    """Seed the database, start both subprocesses, run the load; both always stopped."""
    ports = dict(zip(("simulator", "gateway"), _free_ports(2), strict=True))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    secret = secrets.token_urlsafe(24)
    key = _run(_seed(settings, database_url, urls["simulator"], secret))
    common = {**os.environ, "GATEWAY_LOG__LEVEL": "WARNING", "GATEWAY_LOG__FORMAT": "json"}
    slots = str(SIM_SLOTS_PER_ACCOUNT)
    with (
        tempfile.TemporaryDirectory(prefix=f"{prefix}_") as folder,
        contextlib.ExitStack() as stack,
    ):
        envs = {
            "simulator": {
                **common,
                "GATEWAY_SIMULATOR__HOST": "127.0.0.1",
                "GATEWAY_SIMULATOR__SECRET": secret,
                "GATEWAY_SIMULATOR__ACCOUNTS": str(SIM_ACCOUNTS),
                "GATEWAY_SIMULATOR__CORE_SIZE": slots,
                "GATEWAY_SIMULATOR__QUEUE_SIZE": slots,
            },
            "gateway": {
                **common,
                "GATEWAY_DATA_DIR": folder,
                "GATEWAY_DATABASE__URL": database_url,
                "GATEWAY_REDIS__URL": servers.redis_url,
                "GATEWAY_REDIS__KEY_PREFIX": f"{prefix}:",
                "GATEWAY_SERVER__HOST": "127.0.0.1",
                "GATEWAY_SERVER__PORT": str(ports["gateway"]),
                "GATEWAY_RELAY__SECRET_KEY": "bench-only-image-signing-key",
            },
        }
        sim_port = str(ports["simulator"])
        argvs = {
            "simulator": ["simulate", "--port", sim_port, "--speed", str(SIM_SPEED)],
            "gateway": ["serve", "--workers", str(args.workers)],
        }
        children = {
            name: stack.enter_context(
                _child(name, argvs[name], envs[name], Path(folder) / f"{name}.log")
            )
            for name in ("simulator", "gateway")
        }
        results = _run(_load(children, urls, key, secret, args))
        for child in children.values():
            if child.process.poll() is not None:
                raise StartupError(f"{child.name} died during the run:\n{child.tail()}")
        return results


def _report(
    settings: Settings, servers: Servers, database_url: str, args: Any, results: list[PhaseResult]
) -> None:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    loop_name = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    db = settings.database
    lines = [
        "",
        f"machine: nproc={cpus}, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, load generator on {loop_name} in this process",
        f"settings: {args.duration:g} s per phase after a {min(MAX_WARMUP_S, args.duration / 5):g}"
        f" s warm-up, {args.concurrency} connections, gateway workers {args.workers}, "
        f"db pool {db.pool_min_size}..{db.pool_max_size} per worker",
        f"stores: database {servers.database_kind} {redact_url(database_url)}, "
        f"redis {servers.redis_kind} {redact_url(servers.redis_url)}",
        f"simulator: speed x{SIM_SPEED}, {SIM_ACCOUNTS} accounts x {SIM_SLOTS_PER_ACCOUNT} slots",
        "",
        f"{'phase':<17}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>18}",
    ]
    for r in results:
        errors = f"{r.error_count} ({r.error_rate:.2%})"
        lines.append(
            f"{r.name:<17}{r.per_s:>12.1f}{r.percentile_ms(50):>10.2f}"
            f"{r.percentile_ms(99):>10.2f}{errors:>18}"
        )
    by_name = {r.name: r for r in results}
    gw, up = (
        by_name["gateway submit"].percentile_ms(50),
        by_name["upstream submit"].percentile_ms(50),
    )
    lines += ["", f"gateway's share of a submit (p50): {gw:.2f} - {up:.2f} = {gw - up:.2f} ms"]
    for name, target in TARGETS_PER_S.items():
        verdict = "met" if by_name[name].per_s >= target else "MISSED"
        lines.append(
            f"target: {name} >= {target:,.0f}/s at {args.concurrency} connections: {verdict}"
        )
    lines += [
        f"  {r.name} error: {label} x{count}"
        for r in results
        for label, count in r.errors.most_common(5)
    ]
    print("\n".join(lines), flush=True)


def run_bench(settings: Settings, args: argparse.Namespace) -> None:
    """Run the four phases against fresh subprocesses and print the table; exit 1 on >1% errors."""
    if args.duration <= 0 or args.concurrency < 1 or args.workers < 1:
        raise SystemExit("duration, concurrency and workers must be positive")
    name = f"gw_bench_{os.getpid()}"
    with open_servers(settings) as servers:
        database_url = urlunsplit(urlsplit(servers.database_url)._replace(path=f"/{name}"))
        _run(_execute(servers.database_url, f'CREATE DATABASE "{name}"'))
        try:
            results = _bench(settings, servers, database_url, name, args)
        finally:
            _run(_execute(servers.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    _report(settings, servers, database_url, args, results)
    if any(r.error_rate > ERROR_RATE_LIMIT for r in results):
        sys.exit(1)
