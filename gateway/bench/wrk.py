"""Driving ``wrk`` for ``gateway bench``: one Lua script for every phase, which checks every
answer, and one JSON line of results per run.

A phase is a closed loop of ``--concurrency`` connections for ``--duration`` seconds, after a
warm-up run that is not counted. Only an HTTP 200 with the expected body is a success (a
submit: code 1 or 22 and a task id; a fetch: a task object). A mixed phase sends, on each
connection, a submit and then ``MIXED_FETCHES`` fetches of the tasks it submitted.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import StartupError

MAX_WARMUP_S = 2
REQUEST_TIMEOUT_S = 30
MIXED_FETCHES = 10  # a mixed phase's fetches per submit, as clients that poll send them
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
    server_cpu_ms: float | None  # CPU the answering server used per successful request
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
class Phase:
    name: str
    base_url: str
    headers: dict[str, str]
    ids_path: Path
    fetch: bool
    # The CPU seconds the server that answers the phase has used so far (None: unknown).
    server_cpu_s: Callable[[], float | None]
    mixed: bool = False  # one submit, then MIXED_FETCHES fetches of tasks it submitted


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a valid Lua string literal


def _script(phase: Phase, keep_ids: bool) -> str:
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


def run_wrk(wrk: str, phase: Phase, seconds: int, keep_ids: bool, args: Any) -> PhaseResult:
    """One wrk run of ``phase``; the submit ids it saw are written to ``phase.ids_path`` when
    ``keep_ids``."""
    script = phase.ids_path.with_suffix(f".{phase.name.replace(' ', '_')}.lua")
    script.write_text(_script(phase, keep_ids))
    command = [wrk, "-t1", f"-c{args.concurrency}", f"-d{seconds}s"]
    command += [f"--timeout={REQUEST_TIMEOUT_S}s", "--latency", "-s", str(script), phase.base_url]
    before, server_before = resource.getrusage(resource.RUSAGE_CHILDREN), phase.server_cpu_s()
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    after, server_after = resource.getrusage(resource.RUSAGE_CHILDREN), phase.server_cpu_s()
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
    successes = result["requests"] - result["non_200"] - result["bad"]
    server_cpu_ms = None
    if server_before is not None and server_after is not None and successes:
        server_cpu_ms = (server_after - server_before) * 1000 / successes
    return PhaseResult(
        name=phase.name,
        measured_s=measured_s,
        generator_cores=cpu_s / measured_s,
        server_cpu_ms=server_cpu_ms,
        successes=successes,
        errors=errors,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
    )


def run_phase(wrk: str, phase: Phase, args: Any) -> PhaseResult:
    """A warm-up run (not counted), then the measured run of ``args.duration`` seconds."""
    print(f"  {phase.name} ...", file=sys.stderr, flush=True)
    run_wrk(wrk, phase, warmup_s(args), keep_ids=False, args=args)
    return run_wrk(wrk, phase, args.duration, keep_ids=True, args=args)


def warmup_s(args: argparse.Namespace) -> int:
    """Whole seconds, as wrk takes them: a fifth of a phase, at least 1 and at most 2."""
    duration: int = args.duration
    return max(1, min(MAX_WARMUP_S, duration // 5))
