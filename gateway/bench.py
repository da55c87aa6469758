"""``gateway bench``: submits/s, fetches/s and latency through the gateway, and straight upstream.

What it measures: four phases of ``--duration`` seconds each, in a closed loop with
``--concurrency`` connections (each sends its next request when the previous one is answered):

    upstream submit   POST /mj/submit/imagine straight to the simulator (with mj-api-secret)
    upstream fetch    GET  /mj/task/{id}/fetch straight to the simulator, ids of that phase
    gateway submit    POST /mj/submit/imagine through the gateway: auth, hold, upstream, settle
    gateway fetch     GET  /mj/task/{id}/fetch through the gateway (one row from PostgreSQL)

Only an HTTP 200 with the expected body is a success (a submit: code 1 or 22 and a task id; a
fetch: the asked id); anything else, timeouts and transport errors included, is an error. The
gateway's share of a submit is its p50 minus the simulator's. Exit 1 when a phase has >1% errors.

How: the stores are resolved as every command does (configured URLs, else embedded servers); a
throw-away database ``gw_bench_<pid>`` on that PostgreSQL is migrated, seeded (a user, a key, one
channel) and always dropped. The simulator (speed x1000, never "queue full") and the gateway
(``serve --workers N``) run as subprocesses, always stopped. The load generator runs here (uvloop
if available): one aiohttp session, pre-encoded bodies, latencies in a preallocated list, and a
warm-up per phase whose requests are not counted. Percentiles are of successes only; ``gen cpu``
is the cores the generator itself used, which the gateway did not have.
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
RELAY_SECRET_KEY = "bench-only-image-signing-key"  # noqa: S105 - signs image URLs of a bench
T = TypeVar("T")
Call = Callable[[int], Awaitable[str | None]]
"""One request (its argument: the request's sequence number); None or an error label."""


@dataclass(frozen=True)
class PhaseResult:
    name: str
    measured_s: float
    generator_cores: float  # CPU of this process over the phase, warm-up included
    latencies_s: list[float]  # successes only, sorted
    errors: Counter[str]

    @property
    def error_rate(self) -> float:
        failed, total = self.errors.total(), self.errors.total() + len(self.latencies_s)
        return failed / total if total else 1.0

    @property
    def per_s(self) -> float:
        return len(self.latencies_s) / self.measured_s

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
        self.count = self.sequence = 0
        self.errors: Counter[str] = Counter()

    def add(self, latency_s: float) -> None:
        if self.count == len(self.latencies_s):
            self.latencies_s.extend([0.0] * self.count)
        self.latencies_s[self.count] = latency_s
        self.count += 1


async def _worker(call: Call, recorder: _Recorder, start: float, end: float) -> None:
    """Send requests one after another until ``end``; count those started after ``start``."""
    clock = time.perf_counter
    while (began := clock()) < end:
        recorder.sequence += 1
        try:
            error = await call(recorder.sequence)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            error = type(exc).__name__
        if began < start:
            continue
        if error is None:
            recorder.add(clock() - began)
        else:
            recorder.errors[error] += 1


async def _phase(name: str, call: Call, args: argparse.Namespace) -> PhaseResult:
    """``args.concurrency`` workers for a warm-up and ``args.duration`` measured seconds."""
    print(f"  {name} ...", file=sys.stderr, flush=True)
    recorder = _Recorder(int(args.duration * PREALLOCATED_PER_S) + 1024)
    cpu_s, began = time.process_time(), time.perf_counter()
    start = began + _warmup_s(args)
    end = start + args.duration
    await asyncio.gather(*(_worker(call, recorder, start, end) for _ in range(args.concurrency)))
    ended = time.perf_counter()
    cores = (time.process_time() - cpu_s) / (ended - began)
    latencies = sorted(recorder.latencies_s[: recorder.count])
    return PhaseResult(name, ended - start, cores, latencies, recorder.errors)


def _warmup_s(args: argparse.Namespace) -> float:
    return min(MAX_WARMUP_S, float(args.duration) / 5)


def _submit_call(
    session: aiohttp.ClientSession, url: URL, headers: dict[str, str], ids: list[str]
) -> Call:
    async def call(_: int) -> str | None:
        async with session.post(url, data=SUBMIT_BODY, headers=headers) as response:
            raw = await response.read()
        if response.status != 200:
            return f"HTTP {response.status}"
        try:
            answer = json.loads(raw)
        except ValueError:
            return "answer not JSON"
        if not isinstance(answer, dict) or answer.get("code") not in ACCEPTED_CODES:
            return f"code {answer.get('code') if isinstance(answer, dict) else None}"
        if not answer.get("result"):
            return "no task id"
        ids.append(str(answer["result"]))
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
        if response.status != 200:
            return f"HTTP {response.status}"
        return None if expected in raw else "unexpected body"

    return call


@dataclass(frozen=True)
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def failure(self, what: str) -> StartupError:
        tail = self.log_path.read_text(errors="replace").splitlines()[-20:]
        return StartupError(f"{self.name} {what}; its last output:\n" + "\n".join(tail))


@contextlib.contextmanager
def _child(name: str, argv: list[str], env: dict[str, str], log_path: Path) -> Iterator[_Child]:
    """``python -m gateway ARGV`` in its own session; SIGTERM at exit, SIGKILL if it lingers."""
    with log_path.open("wb") as log:
        command = [sys.executable, "-m", "gateway", *argv]
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command,
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
    every worker process behind the shared port is serving."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not await _answers(session, url, headers):
        if child.process.poll() is not None:
            raise child.failure(f"exited with {child.process.returncode}")
        if time.monotonic() > deadline:
            raise child.failure(f"did not answer {url} in time")
        await asyncio.sleep(0.1)
    closing = {**headers, "Connection": "close"}
    if not all(await asyncio.gather(*(_answers(session, url, closing) for _ in range(fresh)))):
        raise child.failure(f"answers {url} only sometimes")


async def _load(
    children: dict[str, _Child], urls: dict[str, str], key: str, secret: str, args: Any
) -> list[PhaseResult]:
    """The four phases on one session; results in table order (gateway first)."""
    sim, gw = urls["simulator"], urls["gateway"]
    sim_get, gw_get = {"mj-api-secret": secret}, {"Authorization": f"Bearer {key}"}
    sim_post = {**sim_get, "Content-Type": "application/json"}
    gw_post = {**gw_get, "Content-Type": "application/json"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=args.concurrency),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
    ) as session:
        await _wait_ready(session, children["simulator"], f"{sim}/sim/health", sim_get, 4)
        await _wait_ready(session, children["gateway"], f"{gw}/healthz", {}, 8 * args.workers)
        sim_ids: list[str] = []
        gw_ids: list[str] = []
        submit = "/mj/submit/imagine"
        sim_submit_call = _submit_call(session, URL(sim + submit), sim_post, sim_ids)
        sim_submit = await _phase("upstream submit", sim_submit_call, args)
        sim_fetch = await _phase(
            "upstream fetch", _fetch_call(session, sim, sim_get, sim_ids), args
        )
        gw_submit_call = _submit_call(session, URL(gw + submit), gw_post, gw_ids)
        gw_submit = await _phase("gateway submit", gw_submit_call, args)
        gw_fetch = await _phase("gateway fetch", _fetch_call(session, gw, gw_get, gw_ids), args)
    return [gw_submit, gw_fetch, sim_submit, sim_fetch]


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _seed(settings: Settings, database_url: str, simulator_url: str, secret: str) -> str:
    """Migrate the bench database; a rich user, its API key (returned) and the channel."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, settings.migrations_dir)
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


def _free_ports(count: int) -> list[str]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [str(sock.getsockname()[1]) for sock in sockets]


def _env(group: str, **values: str) -> dict[str, str]:
    return {f"GATEWAY_{group}{name}": value for name, value in values.items()}


def _bench(
    settings: Settings, servers: Servers, database_url: str, prefix: str, args: Any
) -> list[PhaseResult]:
    """Seed the database, start both subprocesses, run the load; both always stopped."""
    ports = _free_ports(2)
    urls = {"simulator": f"http://127.0.0.1:{ports[0]}", "gateway": f"http://127.0.0.1:{ports[1]}"}
    secret = secrets.token_urlsafe(24)
    key = _run(_seed(settings, database_url, urls["simulator"], secret))
    common = {**os.environ, **_env("LOG__", LEVEL="WARNING", FORMAT="json")}
    slots = str(SIM_SLOTS_PER_ACCOUNT)
    simulator_env = _env("SIMULATOR__", HOST="127.0.0.1", SECRET=secret, ACCOUNTS=str(SIM_ACCOUNTS))
    simulator_env |= _env("SIMULATOR__", CORE_SIZE=slots, QUEUE_SIZE=slots)
    with (
        tempfile.TemporaryDirectory(prefix=f"{prefix}_") as folder,
        contextlib.ExitStack() as stack,
    ):
        gateway_env = _env("", DATA_DIR=folder, SERVER__HOST="127.0.0.1", SERVER__PORT=ports[1])
        gateway_env |= _env("DATABASE__", URL=database_url) | _env("REDIS__", URL=servers.redis_url)
        gateway_env |= _env("REDIS__", KEY_PREFIX=f"{prefix}:")
        gateway_env |= _env("RELAY__", SECRET_KEY=RELAY_SECRET_KEY)
        simulate = ["simulate", "--port", ports[0], "--speed", str(SIM_SPEED)]
        commands = {
            "simulator": (simulate, simulator_env),
            "gateway": (["serve", "--workers", str(args.workers)], gateway_env),
        }
        children = {
            name: stack.enter_context(_child(name, argv, common | env, Path(folder, f"{name}.log")))
            for name, (argv, env) in commands.items()
        }
        results = _run(_load(children, urls, key, secret, args))
        for child in children.values():
            if child.process.poll() is not None:
                raise child.failure("died during the run")
        return results


def _report(
    settings: Settings,
    servers: Servers,
    database_url: str,
    args: Any,
    load: tuple[float, ...],
    results: list[PhaseResult],
) -> None:
    """The table, and what it was measured on (``load``: load average before the bench began)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    loop_name = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    db, averages = settings.database, " ".join(f"{x:.2f}" for x in load)
    print(
        f"\nmachine: nproc={cpus}, load average before the run {averages}, "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}\n"
        f"settings: {args.duration:g} s per phase after {_warmup_s(args):g} s of warm-up, "
        f"{args.concurrency} connections, {args.workers} gateway workers, "
        f"db pool {db.pool_min_size}..{db.pool_max_size} per worker, generator on {loop_name}\n"
        f"stores: database {servers.database_kind} {redact_url(database_url)}, "
        f"redis {servers.redis_kind} {redact_url(servers.redis_url)}\n"
        f"simulator: speed x{SIM_SPEED}, {SIM_ACCOUNTS} accounts x {SIM_SLOTS_PER_ACCOUNT} slots\n"
        f"\n{'phase':<17}{'requests/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'errors':>17}{'gen cpu':>9}"
    )
    for r in results:
        errors = f"{r.errors.total()} ({r.error_rate:.2%})"
        p50, p99, cores = r.percentile_ms(50), r.percentile_ms(99), r.generator_cores
        print(f"{r.name:<17}{r.per_s:>11.1f}{p50:>9.2f}{p99:>9.2f}{errors:>17}{cores:>9.2f}")
    by_name = {r.name: r for r in results}
    gw, up = (by_name[f"{side} submit"].percentile_ms(50) for side in ("gateway", "upstream"))
    print(f"\ngateway's share of a submit (p50): {gw:.2f} - {up:.2f} = {gw - up:.2f} ms")
    for name, target in TARGETS_PER_S.items():
        verdict = "met" if by_name[name].per_s >= target else "MISSED"
        print(f"target: {name} >= {target:,.0f}/s at {args.concurrency} connections: {verdict}")
    for r in results:
        for label, count in r.errors.most_common(5):
            print(f"  {r.name} error: {label} x{count}")


def run_bench(settings: Settings, args: argparse.Namespace) -> None:
    """Run the four phases against fresh subprocesses and print the table; exit 1 on >1% errors."""
    if args.duration <= 0 or args.concurrency < 1 or args.workers < 1:
        raise SystemExit("duration, concurrency and workers must be positive")
    name = f"gw_bench_{os.getpid()}"
    load = os.getloadavg()
    with open_servers(settings) as servers:
        database_url = urlunsplit(urlsplit(servers.database_url)._replace(path=f"/{name}"))
        _run(_execute(servers.database_url, f'CREATE DATABASE "{name}"'))
        try:
            results = _bench(settings, servers, database_url, name, args)
        finally:
            _run(_execute(servers.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    _report(settings, servers, database_url, args, load, results)
    if any(r.error_rate > ERROR_RATE_LIMIT for r in results):
        sys.exit(1)
