"""What both benchmarks stand on: a throw-away database, the simulator and the gateway as
subprocesses, and waiting until they answer.

The stores are resolved as every command does (configured URLs, else embedded servers); a
database ``<name>`` on that PostgreSQL is migrated, seeded (a user, a key, one channel) and
always dropped. Subprocesses run in sessions of their own and are always stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

from gateway import admin, eventloop
from gateway.config import Settings
from gateway.domain import KeySettings
from gateway.errors import StartupError
from gateway.sealing import SecretBox
from gateway.storage.migrations import apply_migrations
from gateway.storage.servers import Servers, open_servers

SIM_ACCOUNTS = 8
SIM_SLOTS_PER_ACCOUNT = 100_000  # core and queue size: the simulator never answers "queue full"
BALANCE_UNITS = 10**15
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
RELAY_SECRET_KEY = "bench-only-image-signing-key"  # noqa: S105 - signs image URLs of a bench
SEALING_KEY = "bench-only-sealing-key-of-channel-secrets"


@dataclass(frozen=True)
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def worker_pids(self) -> list[int]:
        """This process's workers: its children but the multiprocessing resource tracker;
        empty where /proc cannot tell."""
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            return [
                int(child)
                for child in children
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
            ]
        except (OSError, ValueError):
            return []

    def workers_peak_rss_mb(self) -> list[float]:
        """The peak resident memory of each of this process's workers, in MB, as Linux counts
        it (``VmHWM``); empty where /proc cannot tell."""
        return self._workers_mb("VmHWM")

    def workers_rss_mb(self) -> list[float]:
        """The resident memory of each of this process's workers now, in MB (``VmRSS``)."""
        return self._workers_mb("VmRSS")

    def cpu_s(self) -> float | None:
        """The CPU time (user and system, in seconds) this process and its workers have used
        so far; None where /proc cannot tell."""
        try:
            return sum(cpu_s_of(pid) for pid in [self.process.pid, *self.worker_pids()])
        except (OSError, ValueError):
            return None

    def _workers_mb(self, field: str) -> list[float]:
        try:
            return [_status_mb(pid, field) for pid in self.worker_pids()]
        except (OSError, ValueError):
            return []

    def failure(self, what: str) -> StartupError:
        tail = self.log_path.read_text(errors="replace").splitlines()[-20:]
        return StartupError(f"{self.name} {what}; its last output:\n" + "\n".join(tail))


def cpu_s_of(pid: int) -> float:
    """The CPU seconds (user and system) process ``pid`` has used so far, as Linux counts it."""
    # /proc/<pid>/stat: after the command name in parentheses, utime and stime are the 12th
    # and 13th fields, in clock ticks.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB
    raise ValueError(f"no {field} for {pid}")


@contextlib.contextmanager
def child(name: str, argv: list[str], env: dict[str, str], log_path: Path) -> Iterator[Child]:
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
        yield Child(name, process, log_path)
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
    session: aiohttp.ClientSession, child: Child, url: str, headers: dict[str, str], fresh: int
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


async def wait_all_ready(
    children: dict[str, Child], urls: dict[str, str], secret: str, args: Any
) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        sim, gw, sim_auth = urls["simulator"], urls["gateway"], {"mj-api-secret": secret}
        await _wait_ready(session, children["simulator"], f"{sim}/sim/health", sim_auth, 4)
        await _wait_ready(session, children["gateway"], f"{gw}/healthz", {}, 8 * args.workers)


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# The tables that grow with tasks, and what of each is sized: a table with its indexes and TOAST.
GROWING_TABLES = ("tasks", "holds", "ledger", "webhook_outbox", "idempotency_keys", "media_copies")


async def bytes_per_task(database_url: str) -> dict[str, float]:
    """Each growing table's bytes on disk per task, after a run (VACUUMed first, so that dead
    rows of updates do not count); tables the run left empty are left out."""
    conn = await asyncpg.connect(database_url)
    sizes: dict[str, float] = {}
    try:
        tasks = await conn.fetchval("SELECT count(*) FROM tasks")
        for table in GROWING_TABLES:
            await conn.execute(f"VACUUM {table}")
            if tasks and await conn.fetchval(f"SELECT EXISTS (SELECT FROM {table})"):  # noqa: S608
                size = await conn.fetchval("SELECT pg_total_relation_size($1::REGCLASS)", table)
                sizes[table] = size / tasks
    finally:
        await conn.close()
    return sizes


async def seed(
    settings: Settings,
    database_url: str,
    simulator_url: str,
    secret: str,
    more_simulator_urls: Sequence[str] = (),
) -> str:
    """Migrate the bench database; a rich user, its API key (returned) and the channel (one
    more for each of ``more_simulator_urls``)."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, settings.migrations_dir)
        user_id = await admin.create_user(pool, "bench", BALANCE_UNITS)
        key = (await admin.issue_key(pool, user_id, KeySettings(name="bench"))).key
        urls = [simulator_url, *more_simulator_urls]
        for n, url in enumerate(urls):
            name = "simulator" if n == 0 else f"simulator-{n + 1}"
            box = SecretBox(SEALING_KEY.encode())
            await admin.add_channel(pool, box, name, url, admin.ChannelChanges(secret=secret))
    finally:
        await pool.close()
    return key


def free_ports(count: int) -> list[str]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [str(sock.getsockname()[1]) for sock in sockets]


def settings_env(group: str, **values: str) -> dict[str, str]:
    """Settings as environment variables: ``settings_env("RELAY__", SECRET_KEY=...)``."""
    return {f"GATEWAY_{group}{name}": value for name, value in values.items()}


def simulator_env(secret: str) -> dict[str, str]:
    slots = str(SIM_SLOTS_PER_ACCOUNT)
    values = {"HOST": "127.0.0.1", "SECRET": secret, "ACCOUNTS": str(SIM_ACCOUNTS)}
    return settings_env("SIMULATOR__", **values, CORE_SIZE=slots, QUEUE_SIZE=slots)


def gateway_env(
    folder: str,
    port: str,
    database_url: str,
    servers: Servers,
    prefix: str,
    *,
    keep_media: bool = False,
) -> dict[str, str]:
    found = settings_env("", DATA_DIR=folder, SERVER__HOST="127.0.0.1", SERVER__PORT=port)
    found |= settings_env("DATABASE__", URL=database_url)
    found |= settings_env("REDIS__", URL=servers.redis_url, KEY_PREFIX=f"{prefix}:")
    # Results are copied into the media store only where the bench is about the store: thousands
    # of tasks ending every second would queue a copy each (a grid's costs some 60 ms of CPU),
    # and their backlog would run during the later phases.
    found |= settings_env("MEDIA__", KEEP=str(keep_media).lower())
    return found | settings_env("RELAY__", SECRET_KEY=RELAY_SECRET_KEY, SEALING_KEY=SEALING_KEY)


@contextlib.contextmanager
def bench_database(settings: Settings, name: str) -> Iterator[tuple[Servers, str]]:
    """(the servers, the URL of a fresh database ``name`` on them); dropped at exit."""
    with open_servers(settings) as servers:
        database_url = urlunsplit(urlsplit(servers.database_url)._replace(path=f"/{name}"))
        eventloop.run(_execute(servers.database_url, f'CREATE DATABASE "{name}"'))
        try:
            yield servers, database_url
        finally:
            drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            eventloop.run(_execute(servers.database_url, drop))


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def quiet_env() -> dict[str, str]:
    """This process's environment, with the children logging only warnings, as JSON."""
    return {**os.environ, **settings_env("LOG__", LEVEL="WARNING", FORMAT="json")}
