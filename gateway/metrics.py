"""Every Prometheus metric the gateway exports, and how ``/metrics`` is rendered.

Names follow the Prometheus conventions (base units, ``_total`` counters, ``_seconds``); labels
are bounded: route templates, priced actions, modes, channel names, status classes, outcomes,
never a key, user or task id. With several worker processes (``gateway serve --workers N``)
each process writes its samples to files under ``PROMETHEUS_MULTIPROC_DIR`` and any process's
``/metrics`` answers for all of them; gauges then report the most recent value written.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

if TYPE_CHECKING:
    from gateway.storage.task_sync import Ended

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
TASK_BUCKETS_S = (1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 300, 600, 1800, 3600)

HTTP_REQUESTS = Counter(
    "gateway_http_requests_total", "HTTP requests answered", ["route", "method", "status_class"]
)
HTTP_DURATION = Histogram(
    "gateway_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=LATENCY_BUCKETS_S,
)
OVERHEAD = Histogram(
    "gateway_overhead_seconds",
    "Time to answer an HTTP request, less the time spent waiting on upstreams",
    ["route"],
    buckets=LATENCY_BUCKETS_S,
)
UPSTREAM_REQUESTS = Counter(
    "gateway_upstream_requests_total",
    "Requests to upstream channels, by what came of them (action: the priced action of a submit,"
    " none for other calls)",
    ["channel", "call", "action", "outcome"],
)
UPSTREAM_DURATION = Histogram(
    "gateway_upstream_request_duration_seconds",
    "Time an upstream channel took to answer",
    ["channel", "call", "action"],
    buckets=LATENCY_BUCKETS_S,
)
UPSTREAM_TASKS_REFUSED = Counter(
    "gateway_upstream_task_objects_refused_total",
    "Task objects from upstreams (polls, callbacks) not applied because they do not fit, by why",
    ["channel", "reason"],
)
CHANNEL_SELECTIONS = Counter(
    "gateway_channel_selections_total", "Submits sent to a channel", ["channel", "action"]
)
TASKS_SUBMITTED = Counter(
    "gateway_tasks_submitted_total", "Tasks an upstream accepted", ["action", "mode"]
)
TASKS_FINISHED = Counter(
    "gateway_tasks_finished_total", "Tasks that ended, by status", ["action", "status"]
)
TASK_DURATION = Histogram(
    "gateway_task_duration_seconds",
    "Time from a task's submit to its end",
    ["action", "status"],
    buckets=TASK_BUCKETS_S,
)
QUOTA_CHARGED = Counter(
    "gateway_quota_charged_units_total", "Quota units kept for accepted tasks", ["action"]
)
QUOTA_REFUNDED = Counter(
    "gateway_quota_refunded_units_total", "Quota units refunded for failed tasks", ["action"]
)
BILLING_REFUSALS = Counter(
    "gateway_billing_refusals_total", "Submits refused for want of quota", ["reason"]
)
RATE_LIMITED = Counter(
    "gateway_rate_limited_total",
    "Requests refused by a rate limit: key_ or user_, requests_per_minute or open_tasks",
    ["limit"],
)
RATE_LIMIT_FAIL_OPEN = Counter(
    "gateway_rate_limit_fail_open_total",
    "Requests let through without a per-minute count because Redis could not be reached",
)
ENDED_TASK_FETCHES = Counter(
    "gateway_ended_task_fetches_total",
    "Fetches of ended tasks, by where the answer came from (memory: this process's cache of"
    " ended tasks; database)",
    ["source"],
)
IDEMPOTENT_REPLAYS = Counter(
    "gateway_idempotent_replays_total", "Submits answered from an earlier Idempotency-Key"
)
WEBHOOK_ATTEMPTS = Counter(
    "gateway_webhook_attempts_total", "Webhook delivery attempts", ["outcome"]
)
HOLDS_OPEN = Gauge(
    "gateway_holds_open", "Holds not yet settled or released", multiprocess_mode="mostrecent"
)
HOLDS_PAST_DEADLINE = Gauge(
    "gateway_holds_past_deadline",
    "Open holds past their deadline (the sweep resolves them)",
    multiprocess_mode="mostrecent",
)
TASKS_OPEN = Gauge(
    "gateway_tasks_open",
    "Tasks not yet ended, by channel",
    ["channel"],
    multiprocess_mode="mostrecent",
)
WEBHOOK_BACKLOG = Gauge(
    "gateway_webhook_backlog", "Webhook events not yet delivered", multiprocess_mode="mostrecent"
)
MEDIA_COPY_FAILURES = Counter(
    "gateway_media_copy_failures_total",
    "Results not copied into the media store on an attempt, by why (too_large, mistyped,"
    " private_address, not_http, http_status, unreachable, store, error)",
    ["reason"],
)
MEDIA_COPY_LAG = Histogram(
    "gateway_media_copy_lag_seconds",
    "Time from a task's SUCCESS to its result being in the media store",
    buckets=TASK_BUCKETS_S,
)
MEDIA_OBJECTS = Gauge(
    "gateway_media_objects", "Objects in the media store", multiprocess_mode="mostrecent"
)
MEDIA_BYTES = Gauge(
    "gateway_media_bytes", "Bytes in the media store", multiprocess_mode="mostrecent"
)
POLL_LAG = Histogram(
    "gateway_poll_lag_seconds",
    "For each open task the poller asks its channel about, how long since it was last asked",
    buckets=(0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 20, 30, 60, 120, 300),
)
POLL_LAST_ROUND = Gauge(
    "gateway_poller_last_round_timestamp_seconds",
    "When the poller last finished a round (Unix time); now minus this is the poll lag",
    multiprocess_mode="max",
)
CHANNEL_COOLDOWNS = Counter(
    "gateway_channel_cooldowns_total",
    "Times a channel was rested, by why (unreachable, failures, no_account, auth_failed)",
    ["channel", "reason"],
)
CHANNEL_STATE = Gauge(
    "gateway_channel_state",
    "1 for the state a channel is in (up, cooling, disabled), 0 for the others",
    ["channel", "state"],
    multiprocess_mode="mostrecent",
)
CHANNEL_PROBES = Counter(
    "gateway_channel_probes_total", "Probes of resting channels, by outcome", ["channel", "outcome"]
)
CHANNEL_IN_FLIGHT = Gauge(
    "gateway_channel_in_flight",
    "Tasks a channel took that have not ended, plus submits being sent to it",
    ["channel"],
    multiprocess_mode="mostrecent",
)
CHANNEL_CAP_REFUSALS = Counter(
    "gateway_channel_cap_refusals_total",
    "Submits that passed over a channel at its in-flight cap",
    ["channel"],
)
CHANNEL_ENABLED = Gauge(
    "gateway_channel_enabled",
    "1 for a channel the operator has enabled",
    ["channel"],
    multiprocess_mode="mostrecent",
)
EVENT_LOOP_LAG = Gauge(
    "gateway_event_loop_lag_seconds",
    "How late a worker's event loop ran a timer, worst worker",
    multiprocess_mode="max",
)
DB_POOL_CONNECTIONS = Gauge(
    "gateway_db_pool_connections",
    "Database connections of the workers' pools",
    ["state"],
    multiprocess_mode="livesum",
)
REDIS_UP = Gauge("gateway_redis_up", "1 when Redis answered the last ping", multiprocess_mode="min")
WORKER_RESTARTS = Counter(
    "gateway_worker_restarts_total", "Worker processes started again after one died"
)
BUILD = Gauge(
    "gateway_build_info",
    "The running gateway's version (always 1)",
    ["version"],
    multiprocess_mode="max",
)

_upstream_seconds: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "upstream_seconds", default=None
)


@contextmanager
def request_upstream_time() -> Iterator[list[float]]:
    """Collect, for the current request, the seconds spent waiting on upstreams."""
    spent: list[float] = []
    token = _upstream_seconds.set(spent)
    try:
        yield spent
    finally:
        _upstream_seconds.reset(token)


@contextmanager
def upstream_call(channel: str, call: str, action: str) -> Iterator[None]:
    """Time one upstream request (also towards the current request's upstream time)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        UPSTREAM_DURATION.labels(channel, call, action).observe(elapsed)
        spent = _upstream_seconds.get()
        if spent is not None:
            spent.append(elapsed)


async def watch_process(
    pool_sizes: Callable[[], tuple[int, int]],
    redis_ping: Callable[[], Awaitable[object]],
    interval_s: float = 1.0,
) -> None:
    """Until cancelled: this worker's event-loop lag, its pool's (busy, idle) connections and
    whether Redis answers, every ``interval_s``."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(interval_s)
        EVENT_LOOP_LAG.set(max(0.0, loop.time() - before - interval_s))
        size, idle = pool_sizes()
        DB_POOL_CONNECTIONS.labels("busy").set(size - idle)
        DB_POOL_CONNECTIONS.labels("idle").set(idle)
        try:
            await asyncio.wait_for(redis_ping(), timeout=interval_s)
        except Exception:  # any failure to answer is "down"
            REDIS_UP.set(0)
        else:
            REDIS_UP.set(1)


def count_ends(finished: list[Ended], refunded_units: dict[str, int]) -> None:
    """Tasks that just ended, and the units their ends refunded by priced action."""
    for ended in finished:
        TASKS_FINISHED.labels(ended.price_action, ended.status).inc()
        TASK_DURATION.labels(ended.price_action, ended.status).observe(max(0.0, ended.seconds))
    for action, units in refunded_units.items():
        QUOTA_REFUNDED.labels(action).inc(units)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


@functools.cache
def _request_series(route: str, method: str, status: int) -> tuple[Counter, Histogram, Histogram]:
    """The children of one kind of request: looked up once, as a request costs some 0.15 ms of
    CPU and each label lookup takes a lock and builds a key."""
    return (
        HTTP_REQUESTS.labels(route, method, status_class(status)),
        HTTP_DURATION.labels(route),
        OVERHEAD.labels(route),
    )


def observe_request(
    route: str, method: str, status: int, duration_s: float, overhead_s: float
) -> None:
    """One answered HTTP request (``route``: its template; the label values are bounded, as
    the server parses only the known methods)."""
    requests, durations, overheads = _request_series(route, method, status)
    requests.inc()
    durations.observe(duration_s)
    overheads.observe(overhead_s)


def render() -> tuple[bytes, str]:
    """The exposition of this process, or of every worker when they share a multiprocess dir."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
