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
shares with what it measures), driven by a Lua script that checks every answer; each phase
starts with a warm-up run that is not counted. ``gen cpu`` is the cores wrk itself used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
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
from gateway.config import Settings
from gateway.errors import StartupError
from gateway.storage.servers import Servers, redact_url

SIM_SPEED = 1000
MAX_WARMUP_S = 2
FETCH_IDS_MAX = 20_000  # newest ids of a submit phase; the simulator evicts old finished tasks
ERROR_RATE_LIMIT = 0.01
REQUEST_TIMEOUT_S = 30
# Each gateway phase against the same run's upstream phase: at least this share of its rate.
TARGET_RATIOS = {"gateway submit": 0.4, "gateway fetch": 0.6}
FETCH_P99_TARGET_MS = 20.0
# --overhead (one connection): at most this much over the direct call, p50 and p99, in ms.
OVERHEAD_TARGETS_MS = {"submit": (1.0, 5.0), "fetch": (0.15, 5.0)}
MIXED_FETCHES = 10  # --mixed: fetches per submit, as clients that poll send them
RSS_EVERY_S = 10.0  # --mixed: how often the workers' resident memory is read
RSS_TARGET_MB = 200.0
SUBMIT_BODY = json.dumps({"prompt": "a lighthouse at dawn, volumetric light --ar 3:2"})
RESULT_MARKER = "BENCH_RESULT "

# One wrk script for every phase; the phase's settings come first as Lua globals. Each thread
# checks every answer (a submit: code 1 or 22 and a task id, kept for the fetch phases; a fetch:
# a task object) and done() prints one JSON line. Lua's %d needs integers, hence the floors.
_WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
  bad, n, ids = 0, 0, {}
  if fetch then
    for line in io.lines(ids_path) do table.insert(ids, line) end
  end
end

function request()
  n = n + 1
  if fetch or (mixed and #ids > 0 and n % mixed_every ~= 0) then
    return wrk.format("GET", "/mj/task/" .. ids[n % #ids + 1] .. "/fetch", headers)
  end
  return wrk.format("POST", "/mj/submit/imagine", headers, body)
end

function response(status, response_headers, answer)
  if status ~= 200 then return end
  local code, id = answer:match('^{"code":(%d+)'), answer:match('"result":"(%d+)"')
  if not code then  -- a fetch: a task object
    if not answer:find('"id":"%d+"') then bad = bad + 1 end
  elseif (code == "1" or code == "22") and id then table.insert(ids, id) else bad = bad + 1 end
end

function done(summary, latency, requests)
  local bad, out = 0, nil
  if not fetch and keep_ids then out = io.open(ids_path, "w") end
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("bad")
    if out then for _, id in ipairs(thread:get("ids")) do out:write(id, "\\n") end end
  end
  if out then out:close() end
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"non_200":%d,"socket_errors":%d,"bad":%d,' ..
    '"p50_us":%d,"p99_us":%d}\\n', marker, summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, bad,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(99))))
end
"""


@dataclass(frozen=True)
class PhaseResult:
    name: str
    measured_s: float
    generator_cores: float  # CPU wrk used over the measured run
    successes: int
    errors: dict[str, int]
    p50_ms: float  # of every answer wrk timed, errors included
    p99_ms: float

    @property
    def error_rate(self) -> float:
        failed = sum(self.errors.values())
        total = failed + self.successes
        return failed / total if total else 1.0

    @property
    def per_s(self) -> float:
        return self.successes / self.measured_s


@dataclass(frozen=True)
class _Phase:
    name: str
    base_url: str
    headers: dict[str, str]
    ids_path: Path
    fetch: bool
    mixed: bool = False  # one submit, then MIXED_FETCHES fetches of tasks it submitted


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a valid Lua string literal


def _script(phase: _Phase, keep_ids: bool) -> str:
    headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in phase.headers.items())
    settings = (
        f"fetch = {str(phase.fetch).lower()}\n"
        f"mixed = {str(phase.mixed).lower()}\n"
        f"mixed_every = {MIXED_FETCHES + 1}\n"
        f"keep_ids = {str(keep_ids).lower()}\n"
        f"ids_path = {_lua_string(str(phase.ids_path))}\n"
        f"marker = {_lua_string(RESULT_MARKER)}\n"
        f"body = {_lua_string(SUBMIT_BODY)}\n"
        f"headers = {{{headers}}}\n"
    )
    return settings + _WRK_SCRIPT


def _wrk(wrk: str, phase: _Phase, seconds: int, keep_ids: bool, args: Any) -> PhaseResult:
    """One wrk run of ``phase``; the submit ids it saw are written to ``phase.ids_path`` when
    ``keep_ids``."""
    script = phase.ids_path.with_suffix(f".{phase.name.replace(' ', '_')}.lua")
    script.write_text(_script(phase, keep_ids))
    command = [wrk, "-t1", f"-c{args.concurrency}", f"-d{seconds}s"]
    command += [f"--timeout={REQUEST_TIMEOUT_S}s", "--latency", "-s", str(script), phase.base_url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if done.returncode != 0 or not lines:
        raise StartupError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = json.loads(lines[-1].removeprefix(RESULT_MARKER))
    measured_s = result["duration_us"] / 1e6
    cpu_s = sum(getattr(after, f) - getattr(before, f) for f in ("ru_utime", "ru_stime"))
    errors = {
        label: result[field]
        for label, field in (
            ("HTTP status not 200", "non_200"),
            ("socket error or timeout", "socket_errors"),
            ("unexpected answer", "bad"),
        )
        if result[field]
    }
    return PhaseResult(
        name=phase.name,
        measured_s=measured_s,
        generator_cores=cpu_s / measured_s,
        successes=result["requests"] - result["non_200"] - result["bad"],
        errors=errors,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
    )


def _phase(wrk: str, phase: _Phase, args: Any) -> PhaseResult:
    """A warm-up run (not counted), then the measured run of ``args.duration`` seconds."""
    print(f"  {phase.name} ...", file=sys.stderr, flush=True)
    _wrk(wrk, phase, _warmup_s(args), keep_ids=False, args=args)
    return _wrk(wrk, phase, args.duration, keep_ids=True, args=args)


def _warmup_s(args: argparse.Namespace) -> int:
    """Whole seconds, as wrk takes them: a fifth of a phase, at least 1 and at most 2."""
    duration: int = args.duration
    return max(1, min(MAX_WARMUP_S, duration // 5))


def _load(
    wrk: str, folder: str, urls: dict[str, str], key: str, secret: str, args: Any
) -> list[PhaseResult]:
    """The four phases; results in table order (gateway first)."""
    content = {"Content-Type": "application/json"}
    results: dict[str, PhaseResult] = {}
    for side, url, auth in (
        ("upstream", urls["simulator"], {"mj-api-secret": secret}),
        ("gateway", urls["gateway"], {"Authorization": f"Bearer {key}"}),
    ):
        ids_path = Path(folder, f"{side}.ids")
        submit = _Phase(f"{side} submit", url, auth | content, ids_path, fetch=False)
        results[submit.name] = _phase(wrk, submit, args)
        newest = ids_path.read_text().splitlines()[-FETCH_IDS_MAX:]
        if not newest:
            raise StartupError(f"the {side} submit phase produced no task id")
        ids_path.write_text("\n".join(newest) + "\n")
        fetch = _Phase(f"{side} fetch", url, auth, ids_path, fetch=True)
        results[fetch.name] = _phase(wrk, fetch, args)
    order = ("gateway submit", "gateway fetch", "upstream submit", "upstream fetch")
    return [results[name] for name in order]


def _mixed(
    wrk: str, folder: str, url: str, key: str, gateway: Child, args: Any
) -> tuple[PhaseResult, list[list[float]]]:
    """``--mixed``: one phase through the gateway, one submit then ``MIXED_FETCHES`` fetches
    of the tasks it submitted, with the workers' resident memory (MB) read every
    ``RSS_EVERY_S``."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    phase = _Phase("gateway mixed", url, headers, Path(folder, "mixed.ids"), False, mixed=True)
    samples = [gateway.workers_rss_mb()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(RSS_EVERY_S):
            samples.append(gateway.workers_rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = _phase(wrk, phase, args)
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
            results = _load(wrk, folder, urls, key, secret, args)
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
        f"settings: {args.duration} s per phase after {_warmup_s(args)} s of warm-up, "
        f"{args.concurrency} connections, {args.workers} gateway workers, "
        f"db pool {db.pool_min_size}..{db.pool_max_size} per worker, generator wrk (1 thread)\n"
        f"stores: database {servers.database_kind} {redact_url(database_url)}, "
        f"redis {servers.redis_kind} {redact_url(servers.redis_url)}\n"
        f"simulator: speed x{SIM_SPEED}, {SIM_ACCOUNTS} accounts x {SIM_SLOTS_PER_ACCOUNT} slots\n"
        f"\n{'phase':<17}{'requests/s':>11}{'x upstream':>11}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>17}{'gen cpu':>9}"
    )
    by_name = {r.name: r for r in results}
    for r in results:
        errors = f"{sum(r.errors.values())} ({r.error_rate:.2%})"
        upstream = r.name.replace("gateway", "upstream")
        ratio = f"{_ratio(by_name, r.name):.2f}" if upstream in by_name.keys() - {r.name} else ""
        row = (
            f"{r.per_s:>11.1f}{ratio:>11}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{errors:>17}"
            f"{r.generator_cores:>9.2f}"
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
