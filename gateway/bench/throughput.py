"""``gateway bench``: submits/s, fetches/s and latency through the gateway, and straight upstream.

What it measures: four phases of ``--duration`` seconds each, in a closed loop with
``--concurrency`` connections (each sends its next request when the previous one is answered):

    upstream submit   POST /mj/submit/imagine straight to the simulator (with mj-api-secret)
    upstream fetch    GET  /mj/task/{id}/fetch straight to the simulator, ids of that phase
    gateway submit    POST /mj/submit/imagine through the gateway: auth, hold, upstream, settle
    gateway fetch     GET  /mj/task/{id}/fetch through the gateway (one row from PostgreSQL)

Only an HTTP 200 with the expected body is a success (a submit: code 1 or 22 and a task id; a
fetch: a task object); anything else, timeouts and socket errors included, is an error. Each
gateway phase's rate is also shown as a share of the same run's upstream phase (``x
upstream``), so that a run on any machine says where it stands, and the gateway's share of a
call is its p50 (and p99) less the simulator's. ``--overhead`` runs the same phases at one
connection: what the gateway adds to one call at a time. ``--mixed`` runs instead one phase
through the gateway, ``gateway mixed``, in which each connection sends a submit and then
``MIXED_FETCHES`` fetches of the tasks it submitted, as polling clients do; the workers'
resident memory is read every ``RSS_EVERY_S`` along it. Exit 1 when a phase has >1% errors.

How: a throw-away database ``gw_bench_<pid>``, the simulator (speed x1000, never "queue
full") and the gateway (``serve --workers N``) as ``gateway.bench.stack`` sets them up. The
load comes from ``wrk`` (one thread; a C program, so the generator takes little of the cores it
shares with what it measures), driven by a Lua script that checks every answer
(``gateway.bench.wrk``); each phase starts with a warm-up run that is not counted. ``gen cpu``
is the cores wrk itself used; ``cpu ms``, the CPU time the server that answered the phase used
per successful request: the gateway's processes (its own share, polling included, without the
simulator and the stores behind it) or the simulator's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from gateway import eventloop
from gateway.bench.seeding import seed_and_reconcile
from gateway.bench.stack import (
    SIM_ACCOUNTS,
    SIM_SLOTS_PER_ACCOUNT,
    Child,
    bench_database,
    bytes_per_task,
    child,
    free_ports,
    gateway_env,
    new_secret,
    quiet_env,
    seed,
    simulator_env,
    wait_all_ready,
)
from gateway.bench.wrk import Phase, PhaseResult, run_phase, warmup_s
from gateway.config import Settings
from gateway.errors import StartupError
from gateway.storage.servers import Servers, redact_url

SIM_SPEED = 1000
FETCH_IDS_MAX = 20_000  # newest ids of a submit phase; the simulator evicts old finished tasks
ERROR_RATE_LIMIT = 0.01
# Each gateway phase against the same run's upstream phase: at least this share of its rate.
TARGET_RATIOS = {"gateway submit": 0.4, "gateway fetch": 0.6}
FETCH_P99_TARGET_MS = 20.0
# --overhead (one connection): at most this much over the direct call, p50 and p99, in ms.
OVERHEAD_TARGETS_MS = {"submit": (1.0, 5.0), "fetch": (0.15, 5.0)}
RSS_EVERY_S = 10.0  # --mixed: how often the workers' resident memory is read
RSS_TARGET_MB = 200.0


def _load(
    wrk: str,
    folder: str,
    urls: dict[str, str],
    children: dict[str, Child],
    key: str,
    secret: str,
    args: Any,
) -> list[PhaseResult]:
    """The four phases; results in table order (gateway first)."""
    content = {"Content-Type": "application/json"}
    results: dict[str, PhaseResult] = {}
    for side, server, auth in (
        ("upstream", "simulator", {"mj-api-secret": secret}),
        ("gateway", "gateway", {"Authorization": f"Bearer {key}"}),
    ):
        url, cpu_s = urls[server], children[server].cpu_s
        ids_path = Path(folder, f"{side}.ids")
        submit = Phase(f"{side} submit", url, auth | content, ids_path, False, cpu_s)
        results[submit.name] = run_phase(wrk, submit, args)
        newest = ids_path.read_text().splitlines()[-FETCH_IDS_MAX:]
        if not newest:
            raise StartupError(f"the {side} submit phase produced no task id")
        ids_path.write_text("\n".join(newest) + "\n")
        fetch = Phase(f"{side} fetch", url, auth, ids_path, True, cpu_s)
        results[fetch.name] = run_phase(wrk, fetch, args)
    order = ("gateway submit", "gateway fetch", "upstream submit", "upstream fetch")
    return [results[name] for name in order]


def _mixed(
    wrk: str, folder: str, url: str, key: str, gateway: Child, args: Any
) -> tuple[PhaseResult, list[list[float]]]:
    """``--mixed``: one phase through the gateway, one submit then ``MIXED_FETCHES`` fetches
    of the tasks it submitted, with the workers' resident memory (MB) read every
    ``RSS_EVERY_S``."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    ids_path = Path(folder, "mixed.ids")
    phase = Phase("gateway mixed", url, headers, ids_path, False, gateway.cpu_s, mixed=True)
    samples = [gateway.workers_rss_mb()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(RSS_EVERY_S):
            samples.append(gateway.workers_rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run_phase(wrk, phase, args)
    finally:
        stop.set()
        sampler.join()
    samples.append(gateway.workers_rss_mb())
    return result, samples


def _bench(
    settings: Settings, servers: Servers, database_url: str, prefix: str, wrk: str, args: Any
) -> tuple[list[PhaseResult], list[float], dict[str, float], list[list[float]]]:
    """Seed the database, start both subprocesses, run the load; both always stopped. The
    results, each gateway worker's peak resident memory (MB), each growing table's bytes per
    task, and (``--mixed``) the workers' resident memory read along the run."""
    ports = free_ports(2)
    urls = {"simulator": f"http://127.0.0.1:{ports[0]}", "gateway": f"http://127.0.0.1:{ports[1]}"}
    secret = new_secret()
    key = eventloop.run(seed(settings, database_url, urls["simulator"], secret))
    if args.seed_rows:
        seeded = eventloop.run(seed_and_reconcile(database_url, args.seed_rows))
        print(
            f"seeded {seeded.rows:,} tasks in {seeded.seed_s:.0f} s; the holds of ended tasks"
            f" past their keeping ({seeded.holds_forgotten:,}) deleted in {seeded.forget_s:.1f} s;"
            f" gateway reconcile took {seeded.reconcile_s:.1f} s and found"
            f" {'no gap' if seeded.reconciled else 'GAPS'}",
            file=sys.stderr,
            flush=True,
        )
    common = quiet_env()
    with (
        tempfile.TemporaryDirectory(prefix=f"{prefix}_") as folder,
        contextlib.ExitStack() as stack,
    ):
        simulate = ["simulate", "--port", ports[0], "--speed", str(SIM_SPEED)]
        commands = {
            "simulator": (simulate, simulator_env(secret)),
            "gateway": (
                ["serve", "--workers", str(args.workers)],
                gateway_env(folder, ports[1], database_url, servers, prefix),
            ),
        }
        children = {
            name: stack.enter_context(child(name, argv, common | env, Path(folder, f"{name}.log")))
            for name, (argv, env) in commands.items()
        }
        eventloop.run(wait_all_ready(children, urls, secret, args))
        samples: list[list[float]] = []
        if args.mixed:
            mixed, samples = _mixed(wrk, folder, urls["gateway"], key, children["gateway"], args)
            results = [mixed]
        else:
            results = _load(wrk, folder, urls, children, key, secret, args)
        for running in children.values():
            if running.process.poll() is not None:
                raise running.failure("died during the run")
        sizes = eventloop.run(bytes_per_task(database_url))
        return results, children["gateway"].workers_peak_rss_mb(), sizes, samples


def _report(
    settings: Settings,
    servers: Servers,
    database_url: str,
    args: Any,
    load: tuple[float, ...],
    results: list[PhaseResult],
    peaks_mb: list[float],
    sizes: dict[str, float],
) -> None:
    """The table, and what it was measured on (``load``: load average before the bench began)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    db, averages = settings.database, " ".join(f"{x:.2f}" for x in load)
    print(
        f"\nmachine: nproc={cpus}, load average before the run {averages}, "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}\n"
        f"settings: {args.duration} s per phase after {warmup_s(args)} s of warm-up, "
        f"{args.concurrency} connections, {args.workers} gateway workers, "
        f"db pool {db.pool_min_size}..{db.pool_max_size} per worker, generator wrk (1 thread)\n"
        f"stores: database {servers.database_kind} {redact_url(database_url)}, "
        f"redis {servers.redis_kind} {redact_url(servers.redis_url)}\n"
        f"simulator: speed x{SIM_SPEED}, {SIM_ACCOUNTS} accounts x {SIM_SLOTS_PER_ACCOUNT} slots\n"
        f"\n{'phase':<17}{'requests/s':>11}{'x upstream':>11}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>17}{'gen cpu':>9}{'cpu ms':>8}"
    )
    by_name = {r.name: r for r in results}
    for r in results:
        errors = f"{sum(r.errors.values())} ({r.error_rate:.2%})"
        upstream = r.name.replace("gateway", "upstream")
        ratio = f"{_ratio(by_name, r.name):.2f}" if upstream in by_name.keys() - {r.name} else ""
        cpu_ms = "" if r.server_cpu_ms is None else f"{r.server_cpu_ms:.3f}"
        row = (
            f"{r.per_s:>11.1f}{ratio:>11}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{errors:>17}"
            f"{r.generator_cores:>9.2f}{cpu_ms:>8}"
        )
        print(f"{r.name:<17}{row}")
    if peaks_mb:
        shown = ", ".join(f"{mb:.0f}" for mb in sorted(peaks_mb))
        print(f"gateway workers' peak resident memory: {shown} MB")
    if sizes:
        shown = ", ".join(f"{table} {size:,.0f}" for table, size in sorted(sizes.items()))
        print(f"disk per million tasks, MB (tables with their indexes): {shown}")
    for r in results:
        for label, count in r.errors.items():
            print(f"  {r.name} error: {label} x{count}")
    print()
    if not args.mixed:
        _targets(by_name, args)


def _targets(by_name: dict[str, PhaseResult], args: Any) -> None:
    """Each gateway phase's share of a call (p50 and p99 less the upstream's), and whether it
    met its target."""
    for call in ("submit", "fetch"):
        gw, up = by_name[f"gateway {call}"], by_name[f"upstream {call}"]
        print(
            f"gateway's share of a {call}: p50 {gw.p50_ms - up.p50_ms:+.2f} ms,"
            f" p99 {gw.p99_ms - up.p99_ms:+.2f} ms"
        )
    if args.overhead:
        for call, (p50_ms, p99_ms) in OVERHEAD_TARGETS_MS.items():
            gw, up = by_name[f"gateway {call}"], by_name[f"upstream {call}"]
            met = gw.p50_ms - up.p50_ms <= p50_ms and gw.p99_ms - up.p99_ms <= p99_ms
            print(
                f"target: {call} adds at most {p50_ms} ms (p50) and {p99_ms} ms (p99) at one"
                f" connection: {_verdict(met)}"
            )
    else:
        for name, share in TARGET_RATIOS.items():
            met = _ratio(by_name, name) >= share
            print(f"target: {name} >= {share} x upstream: {_verdict(met)}")
        met = by_name["gateway fetch"].p99_ms < FETCH_P99_TARGET_MS
        print(f"target: gateway fetch p99 < {FETCH_P99_TARGET_MS:g} ms: {_verdict(met)}")


def _memory_report(samples: list[list[float]], peaks_mb: list[float]) -> None:
    """``--mixed``: each worker's resident memory along the run, and its peak."""
    for worker, series in enumerate(zip(*samples, strict=False)):
        shown = " ".join(f"{mb:.0f}" for mb in series)
        print(f"worker {worker + 1} resident memory every {RSS_EVERY_S:g} s, MB: {shown}")
    met = bool(peaks_mb) and max(peaks_mb) < RSS_TARGET_MB
    print(f"target: every worker stays under {RSS_TARGET_MB:g} MB: {_verdict(met)}")


def _ratio(by_name: dict[str, PhaseResult], name: str) -> float:
    """A gateway phase's rate against the same run's upstream phase."""
    upstream = by_name[name.replace("gateway", "upstream")].per_s
    return by_name[name].per_s / upstream if upstream else 0.0


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def run_bench(settings: Settings, args: argparse.Namespace) -> None:
    """Run the four phases against fresh subprocesses and print the table; exit 1 on >1% errors."""
    if args.duration <= 0 or args.concurrency < 1 or args.workers < 1:
        raise SystemExit("duration, concurrency and workers must be positive")
    if args.overhead:
        args.concurrency = 1  # one request at a time: what the gateway adds to each
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("gateway bench needs wrk on the PATH (Debian: apt-get install wrk)")
    name = f"gw_bench_{os.getpid()}"
    load = os.getloadavg()
    with bench_database(settings, name) as (servers, database_url):
        results, peaks_mb, sizes, samples = _bench(settings, servers, database_url, name, wrk, args)
    _report(settings, servers, database_url, args, load, results, peaks_mb, sizes)
    if args.mixed:
        _memory_report(samples, peaks_mb)
    if any(r.error_rate > ERROR_RATE_LIMIT for r in results):
        sys.exit(1)
