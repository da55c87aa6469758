"""``gateway bench --open-tasks N``: the poller keeping N open tasks up to date.

Four simulators slow enough (x0.1: an imagine runs for about eight minutes) that every task
stays open through the run, each a channel of the gateway, which polls them only (no
callbacks). N imagines are submitted through the gateway, 64 at a time. Once the last is
accepted and ``SETTLE_ROUNDS`` poll rounds have ended since (every task has been asked about),
the bench watches for ``--duration`` seconds:

- ``gateway_poll_lag_seconds`` (how long each task the poller asks about went unasked), from
  the gateway's own ``/metrics`` at both ends of the window: its p50 and p95 as Prometheus's
  ``histogram_quantile`` reads them, against the target of twice the poll interval;
- the CPU each gateway worker used meanwhile. Nothing else calls the gateway, so what the
  leader's worker used is the poller's cost (with the leader's other jobs), against the target
  of half a core. The simulators' CPU is shown too: they answer every list call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from gateway import eventloop
from gateway.bench.stack import (
    Child,
    bench_database,
    child,
    cpu_s_of,
    free_ports,
    gateway_env,
    new_secret,
    quiet_env,
    seed,
    simulator_env,
    wait_all_ready,
)
from gateway.config import Settings
from gateway.errors import StartupError
from gateway.storage.servers import Servers

CHANNELS = 4
POLLING_SIM_SPEED = 0.1  # an imagine runs about 500 s: open through the whole run
SUBMITTERS = 64
SETTLE_ROUNDS = 3
LAG_TARGET_INTERVALS = 2.0
CPU_TARGET_CORES = 0.5
_LAG = "gateway_poll_lag_seconds"
_LAST_ROUND = "gateway_poller_last_round_timestamp_seconds"


@dataclass(frozen=True, slots=True)
class PollingResult:
    submitted: int
    submit_s: float
    watched_s: float
    lag_p50_s: float
    lag_p95_s: float
    asked_per_s: float  # tasks asked about per second (the histogram's count)
    worker_cores: list[float]  # each worker's CPU over the window, busiest first
    simulator_cores: float  # the simulators' CPU over the window, all four


async def _submit_all(base_url: str, key: str, count: int) -> None:
    """``count`` imagines through the gateway, ``SUBMITTERS`` at a time; each must be taken."""
    headers = {"Authorization": f"Bearer {key}"}
    left = iter(range(count))
    connector = aiohttp.TCPConnector(limit=SUBMITTERS)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def submitter() -> None:
            for n in left:
                body = {"prompt": f"a lantern on a pier, number {n}"}
                url = f"{base_url}/mj/submit/imagine"
                async with http.post(url, json=body, headers=headers) as response:
                    answer: dict[str, Any] = await response.json(content_type=None)
                if answer.get("code") not in (1, 22):
                    raise StartupError(f"submit {n} was refused: {answer}")
                if n % 10_000 == 9_999:
                    print(f"  submitted {n + 1:,} of {count:,}", file=sys.stderr, flush=True)

        await asyncio.gather(*(submitter() for _ in range(SUBMITTERS)))


async def _metrics(base_url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/metrics") as response:
        return await response.text()


def _lag_buckets(text: str) -> dict[float, float]:
    """The poll-lag histogram's cumulative bucket counts by upper bound (+Inf as inf)."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{_LAG}_bucket{{"):
            labels, _, value = line.rpartition(" ")
            bound = float(labels.split('le="', 1)[1].split('"', 1)[0])
            buckets[bound] = buckets.get(bound, 0.0) + float(value)
    return buckets


def _last_round(text: str) -> float:
    for line in text.splitlines():
        if line.startswith(_LAST_ROUND):
            return float(line.rpartition(" ")[2])
    return 0.0


def _settle(gw_url: str, rounds: int) -> None:
    """Until ``rounds`` poll rounds have ended from now."""
    seen = _last_round(eventloop.run(_metrics(gw_url)))
    while rounds:
        time.sleep(0.2)
        last = _last_round(eventloop.run(_metrics(gw_url)))
        if last != seen:
            seen, rounds = last, rounds - 1


def quantile(q: float, buckets: dict[float, float]) -> float:
    """``histogram_quantile(q, ...)`` over cumulative ``buckets``: linear within the bucket
    the rank falls in; the highest finite bound if it falls in +Inf."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


def _cpu_s(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user and system) each process has used."""
    return {pid: cpu_s_of(pid) for pid in pids}


def _polling(
    settings: Settings, servers: Servers, database_url: str, prefix: str, args: Any
) -> PollingResult:
    ports = free_ports(CHANNELS + 1)
    sim_urls = [f"http://127.0.0.1:{port}" for port in ports[:CHANNELS]]
    gw_url = f"http://127.0.0.1:{ports[-1]}"
    secret = new_secret()
    key = eventloop.run(seed(settings, database_url, sim_urls[0], secret, sim_urls[1:]))
    common = quiet_env()
    with (
        tempfile.TemporaryDirectory(prefix=f"{prefix}_") as folder,
        contextlib.ExitStack() as stack,
    ):
        sims = [
            stack.enter_context(
                child(
                    "simulator",
                    ["simulate", "--port", port, "--speed", str(POLLING_SIM_SPEED)],
                    common | simulator_env(secret),
                    Path(folder, f"simulator-{n}.log"),
                )
            )
            for n, port in enumerate(ports[:CHANNELS])
        ]
        env = common | gateway_env(folder, ports[-1], database_url, servers, prefix)
        argv = ["serve", "--workers", str(args.workers)]
        gateway = stack.enter_context(child("gateway", argv, env, Path(folder, "gateway.log")))
        for sim, url in zip(sims, sim_urls, strict=True):
            children = {"simulator": sim, "gateway": gateway}
            eventloop.run(
                wait_all_ready(children, {"simulator": url, "gateway": gw_url}, secret, args)
            )
        started = time.monotonic()
        eventloop.run(_submit_all(gw_url, key, args.open_tasks))
        submit_s = time.monotonic() - started
        print("  waiting for the poller to catch up ...", file=sys.stderr, flush=True)
        _settle(gw_url, SETTLE_ROUNDS)
        print("  watching the poller ...", file=sys.stderr, flush=True)
        return _watch(gateway, sims, gw_url, args, submit_s)


def _watch(
    gateway: Child, sims: list[Child], gw_url: str, args: Any, submit_s: float
) -> PollingResult:
    pids = gateway.worker_pids()
    sim_pids = [sim.process.pid for sim in sims]
    before_lag = _lag_buckets(eventloop.run(_metrics(gw_url)))
    before_cpu, started = _cpu_s(pids + sim_pids), time.monotonic()
    time.sleep(args.duration)
    after_lag = _lag_buckets(eventloop.run(_metrics(gw_url)))
    after_cpu, watched_s = _cpu_s(pids + sim_pids), time.monotonic() - started
    if gateway.process.poll() is not None:
        raise gateway.failure("died during the run")
    window = {bound: after_lag[bound] - before_lag.get(bound, 0.0) for bound in after_lag}
    used = {pid: (after_cpu[pid] - before_cpu[pid]) / watched_s for pid in after_cpu}
    cores = sorted((used[pid] for pid in pids), reverse=True)
    return PollingResult(
        submitted=args.open_tasks,
        submit_s=submit_s,
        watched_s=watched_s,
        lag_p50_s=quantile(0.5, window),
        lag_p95_s=quantile(0.95, window),
        asked_per_s=window.get(float("inf"), 0.0) / watched_s,
        worker_cores=cores,
        simulator_cores=sum(used[pid] for pid in sim_pids),
    )


def run_polling(settings: Settings, args: argparse.Namespace) -> None:
    """Print the poll lag and the poller's CPU with ``--open-tasks`` tasks open."""
    if args.open_tasks < 1 or args.duration <= 0:
        raise SystemExit("--open-tasks and --duration must be positive")
    name = f"gw_polling_{os.getpid()}"
    with bench_database(settings, name) as (servers, database_url):
        result = _polling(settings, servers, database_url, name, args)
    interval = settings.relay.poll_interval_s
    lag_met = result.lag_p95_s <= LAG_TARGET_INTERVALS * interval
    cpu_met = result.worker_cores[0] <= CPU_TARGET_CORES
    cores = ", ".join(f"{c:.2f}" for c in result.worker_cores)
    print(
        f"\n{result.submitted:,} imagines open on {CHANNELS} simulator channels (x"
        f"{POLLING_SIM_SPEED:g}), submitted in {result.submit_s:.0f} s; poll interval"
        f" {interval:g} s, at most {settings.relay.poll_batch_size} ids per list call,"
        f" {args.workers} gateway workers, watched {result.watched_s:.0f} s\n"
        f"tasks asked about: {result.asked_per_s:,.0f}/s\n"
        f"poll lag: p50 {result.lag_p50_s:.2f} s, p95 {result.lag_p95_s:.2f} s\n"
        f"gateway workers' CPU (busiest first, the leader's is the poller): {cores} cores;"
        f" the simulators': {result.simulator_cores:.2f} cores\n"
        f"target: poll lag p95 <= {LAG_TARGET_INTERVALS:g} x the interval"
        f" ({LAG_TARGET_INTERVALS * interval:g} s): {'met' if lag_met else 'MISSED'}\n"
        f"target: the poller uses at most {CPU_TARGET_CORES:g} core:"
        f" {'met' if cpu_met else 'MISSED'}"
    )
