"""``/metrics`` after a mixed run: every metric moved as the run says it should."""

from __future__ import annotations

import asyncio
import shutil
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests.api.helpers import metric_value, scrape
from tests.conftest import Client, StartGateway, StartSimulator

IMAGINE_UNITS = 100_000


@pytest.fixture
async def hook_url() -> AsyncIterator[str]:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", ok)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    await runner.cleanup()


async def test_metrics_move_with_a_mixed_run(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, hook_url: str
) -> None:
    relay = {"webhook_allow_private": True, "webhook_poll_s": 0.02}
    gateway = await gateway_factory(relay=relay)
    simulator = await simulator_factory()
    await gateway.add_channel(simulator, name="metered")
    rich = await gateway.client_with_key(balance_units=10 * IMAGINE_UNITS)
    poor = await gateway.client_with_key(balance_units=0, name="poor")
    limited_user = await gateway.create_user("lim", 10 * IMAGINE_UNITS)
    limited = Client(
        gateway, limited_user, await gateway.issue_key(limited_user, requests_per_minute=1)
    )
    before = await scrape(gateway)

    ok = await rich.post("/mj/submit/imagine", {"prompt": "a fox", "notifyHook": hook_url})
    failed = await rich.post("/mj/submit/imagine", {"prompt": "a fox [[sim:fail_banned]]"})
    replay = {"Idempotency-Key": "k-1"}
    await rich.post("/mj/submit/imagine", {"prompt": "an owl"}, headers=replay)
    replayed = await rich.post("/mj/submit/imagine", {"prompt": "an owl"}, headers=replay)
    refused = await poor.post("/mj/submit/imagine", {"prompt": "a fox"})
    await limited.get("/api/me")
    throttled = await limited.get("/api/me")
    await rich.wait_for(ok.json()["result"], {"SUCCESS"})
    await rich.wait_for(failed.json()["result"], {"FAILURE"})
    await gateway.services.poller.run_once()
    for _ in range(100):
        delivered = metric_value(
            await scrape(gateway), "gateway_webhook_attempts_total", outcome="delivered"
        )
        if delivered > metric_value(before, "gateway_webhook_attempts_total", outcome="delivered"):
            break
        await asyncio.sleep(0.05)
    after = await scrape(gateway)

    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert (refused.status_code, throttled.status_code) == (403, 429)
    assert float(ok.headers["X-Gateway-Overhead-Ms"]) >= 0

    def moved(name: str, **labels: str) -> float:
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    route = "/mj/submit/imagine"
    assert moved("gateway_http_requests_total", route=route, status_class="2xx") == 4
    assert moved("gateway_http_requests_total", route=route, status_class="4xx") == 1
    assert moved("gateway_http_request_duration_seconds_count", route=route) == 5
    assert moved("gateway_overhead_seconds_count", route=route) == 5
    assert (
        moved(
            "gateway_upstream_requests_total",
            channel="metered",
            call="submit",
            action="mj_imagine",
            outcome="accepted",
        )
        == 3
    )
    assert (
        moved("gateway_upstream_requests_total", channel="metered", call="list", outcome="answered")
        >= 1
    )
    assert (
        moved("gateway_upstream_request_duration_seconds_count", channel="metered", call="submit")
        == 3
    )
    assert moved("gateway_channel_selections_total", channel="metered", action="mj_imagine") == 3
    assert moved("gateway_tasks_submitted_total", action="mj_imagine", mode="FAST") == 3
    assert moved("gateway_tasks_finished_total", status="SUCCESS") >= 1
    assert moved("gateway_tasks_finished_total", action="mj_imagine", status="FAILURE") == 1
    assert moved("gateway_task_duration_seconds_count", action="mj_imagine", status="FAILURE") == 1
    assert moved("gateway_task_duration_seconds_sum", status="SUCCESS") > 0
    assert moved("gateway_quota_charged_units_total", action="mj_imagine") == 3 * IMAGINE_UNITS
    assert moved("gateway_quota_refunded_units_total", action="mj_imagine") == IMAGINE_UNITS
    assert moved("gateway_billing_refusals_total", reason="user_balance") == 1
    assert moved("gateway_idempotent_replays_total") == 1
    assert moved("gateway_rate_limited_total", limit="key_requests_per_minute") == 1
    assert moved("gateway_webhook_attempts_total", outcome="delivered") >= 1
    for _ in range(100):  # a gauge of the poller's rounds: it says 0 once a round has seen 0
        if metric_value(after, "gateway_holds_open") == 0:
            break
        await asyncio.sleep(0.05)
        after = await scrape(gateway)
    assert metric_value(after, "gateway_holds_open") == 0
    assert metric_value(after, "gateway_holds_past_deadline") == 0
    assert metric_value(after, "gateway_tasks_open", channel="metered") >= 0
    assert metric_value(after, "gateway_webhook_backlog") >= 0
    assert metric_value(after, "gateway_poller_last_round_timestamp_seconds") > 0
    assert moved("gateway_poll_lag_seconds_count") >= 2  # both tasks were asked about
    assert metric_value(after, "gateway_build_info") == 1
    for _ in range(60):  # the process watch reports every second
        latest = await scrape(gateway)
        if metric_value(latest, "gateway_redis_up") == 1:
            break
        await asyncio.sleep(0.1)
    assert metric_value(latest, "gateway_db_pool_connections") >= 1
    assert metric_value(latest, "gateway_event_loop_lag_seconds") >= 0
    promtool = shutil.which("promtool")
    if promtool is not None:  # Prometheus' own linter on what a real run exports
        check = await asyncio.create_subprocess_exec(
            promtool, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
        )
        output, _ = await check.communicate(after.encode())
        assert check.returncode == 0, output.decode()
