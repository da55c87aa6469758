"""``gateway bench --media``: what a popular image costs once the media store holds it.

One imagine through the gateway (the simulator at speed x1000, ``serve --workers N``, a
throw-away database, as ``gateway.bench.stack`` sets them up); once its result is copied, its
image is fetched ``--fetches`` times through the gateway, and the simulator's own count of
downloads says how many of them reached the upstream; then ``wrk`` fetches it for
``--duration`` seconds on ``--concurrency`` connections: the rate the store serves it at.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from gateway import eventloop
from gateway.bench.stack import (
    bench_database,
    child,
    free_ports,
    gateway_env,
    new_secret,
    quiet_env,
    seed,
    simulator_env,
    wait_all_ready,
)
from gateway.bench.throughput import SIM_SPEED
from gateway.config import Settings
from gateway.errors import StartupError

WAIT_S = 60.0
_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_LATENCY = re.compile(r"^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


async def _json(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, **kw) as response:
        if response.status != 200:
            raise StartupError(f"{method} {url}: HTTP {response.status}")
        return await response.json()


async def _measure(
    urls: dict[str, str], key: str, secret: str, database_url: str, fetches: int
) -> tuple[str, int, dict[str, Any]]:
    """Submit, wait for SUCCESS and the copy, fetch the image ``fetches`` times."""
    auth = {"Authorization": f"Bearer {key}"}
    stats_url, sim_auth = f"{urls['simulator']}/sim/stats", {"mj-api-secret": secret}
    async with aiohttp.ClientSession() as session:
        body = {"prompt": "a lighthouse at dawn"}
        answer = await _json(
            session, "POST", f"{urls['gateway']}/mj/submit/imagine", json=body, headers=auth
        )
        task_id = answer["result"]
        deadline = time.monotonic() + WAIT_S
        while (
            task := await _json(
                session, "GET", f"{urls['gateway']}/mj/task/{task_id}/fetch", headers=auth
            )
        )["status"] != "SUCCESS":
            if time.monotonic() > deadline:
                raise StartupError(f"task {task_id} did not succeed in time: {task['status']}")
            await asyncio.sleep(0.05)
        succeeded = time.monotonic()
        conn = await asyncpg.connect(database_url)
        try:
            while (
                await conn.fetchval(
                    "SELECT status FROM media_copies WHERE task_id = $1", int(task_id)
                )
                != "DONE"
            ):
                if time.monotonic() > deadline:
                    raise StartupError(f"task {task_id}'s result was not copied in time")
                await asyncio.sleep(0.05)
        finally:
            await conn.close()
        copied = time.monotonic()
        before = (await _json(session, "GET", stats_url, headers=sim_auth))["requests"].get(
            "attachments", 0
        )
        image_url = task["imageUrl"]
        bodies: set[str] = set()
        size = 0
        limit = asyncio.Semaphore(64)

        async def one() -> None:
            nonlocal size
            async with limit, session.get(image_url) as response:
                data = await response.read()
                if response.status != 200:
                    raise StartupError(f"image fetch: HTTP {response.status}")
                bodies.add(hashlib.sha256(data).hexdigest())
                size = len(data)

        await asyncio.gather(*(one() for _ in range(fetches)))
        after = (await _json(session, "GET", stats_url, headers=sim_auth))["requests"].get(
            "attachments", 0
        )
    return (
        image_url,
        before,
        {
            "distinct": len(bodies),
            "during": after - before,
            "copy_s": copied - succeeded,
            "size": size,
        },
    )


def _wrk(wrk: str, url: str, args: Any) -> tuple[float, float, float]:
    command = [wrk, "-t1", f"-c{args.concurrency}", f"-d{args.duration}s", "--latency", url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    rate = _RATE.search(done.stdout)
    if done.returncode != 0 or rate is None:
        raise StartupError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    latency = {p: float(v) * _UNITS_MS[u] for p, v, u in _LATENCY.findall(done.stdout)}
    if "Non-2xx" in done.stdout:
        raise StartupError(f"wrk saw errors: {done.stdout}")
    return float(rate.group(1)), latency.get("50", 0.0), latency.get("99", 0.0)


def run_media(settings: Settings, args: argparse.Namespace) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("gateway bench needs wrk on the PATH (Debian: apt-get install wrk)")
    name = f"gw_bench_{os.getpid()}"
    with bench_database(settings, name) as (servers, database_url):
        ports = free_ports(2)
        urls = {
            "simulator": f"http://127.0.0.1:{ports[0]}",
            "gateway": f"http://127.0.0.1:{ports[1]}",
        }
        secret = new_secret()
        key = eventloop.run(seed(settings, database_url, urls["simulator"], secret))
        with (
            tempfile.TemporaryDirectory(prefix=f"{name}_") as folder,
            contextlib.ExitStack() as stack,
        ):
            commands = {
                "simulator": (
                    ["simulate", "--port", ports[0], "--speed", str(SIM_SPEED)],
                    simulator_env(secret),
                ),
                "gateway": (
                    ["serve", "--workers", str(args.workers)],
                    gateway_env(folder, ports[1], database_url, servers, name, keep_media=True),
                ),
            }
            children = {
                child_name: stack.enter_context(
                    child(child_name, argv, quiet_env() | env, Path(folder, f"{child_name}.log"))
                )
                for child_name, (argv, env) in commands.items()
            }
            eventloop.run(wait_all_ready(children, urls, secret, args))
            image_url, before, found = eventloop.run(
                _measure(urls, key, secret, database_url, args.fetches)
            )
            per_s, p50, p99 = _wrk(wrk, image_url, args)
    print(
        f"\none image ({found['size']} bytes) fetched {args.fetches} times through the gateway:"
        f" {found['distinct']} distinct body; downloads from the upstream: {before} before"
        f" (the copy), {found['during']} during the fetches; copied {found['copy_s']:.2f} s"
        f" after SUCCESS was seen\n"
        f"served from the store by wrk: {per_s:.1f} requests/s, p50 {p50:.2f} ms,"
        f" p99 {p99:.2f} ms ({args.concurrency} connections, {args.workers} workers,"
        f" {args.duration} s)"
    )
