"""The task fetch is answered before the framework routes it (``gateway.api.fast_path``); what it
answers is what the framework's route answers. A trailing slash takes a fetch to the framework's
route (the fast path leaves paths the framework would normalise to it), so each case is asked
both ways and must get the same status, body and headers."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import httpx

from gateway.api.fast_path import fetch_first
from tests.api.helpers import UNKNOWN_TASK_ID, metric_value, scrape, start, submit, succeed
from tests.conftest import Client, Gateway, StartGateway, StartSimulator

# Headers that differ from one answer to the next whatever served it.
_PER_ANSWER = {"date", "x-request-id", "x-gateway-overhead-ms", "x-ratelimit-remaining"}
ROUTE = "/mj/task/{task_id}/fetch"


def _seen(answer: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in answer.headers.items() if k not in _PER_ANSWER}
    return answer.status_code, answer.content, headers


async def _both_ways(gateway: Gateway, path: str, headers: dict[str, str]) -> None:
    fast = await gateway.http.get(path, headers=headers)
    framework = await gateway.http.get(path + "/", headers=headers)
    assert _seen(fast) == _seen(framework), (fast.text, framework.text)
    assert fast.headers["x-request-id"]
    assert framework.headers["x-request-id"]


async def test_each_answer_of_a_fetch_is_the_frameworks(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, client = await start(gateway_factory, await simulator_factory())
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": "a lighthouse"})
    await succeed(client, task_id)
    for path in (
        f"/mj/task/{task_id}/fetch",
        f"/mj-relax/mj/task/{task_id}/fetch",
        f"/mj/task/{UNKNOWN_TASK_ID}/fetch",
        "/mj/task/not-a-task/fetch",
    ):
        await _both_ways(gateway, path, client.headers)
    for headers in (
        {"mj-api-secret": client.key},
        {},
        {"Authorization": "Bearer sk-not-a-key"},
        {"Authorization": "Basic x"},
    ):
        await _both_ways(gateway, f"/mj/task/{task_id}/fetch", headers)
    other = await gateway.client_with_key(name="bob")
    await _both_ways(gateway, f"/mj/task/{task_id}/fetch", other.headers)


async def test_plain_fetches_are_taken_and_the_rest_left_to_the_framework(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    """The path's own choice, seen from inside: which requests reach the framework at all."""
    gateway, client = await start(gateway_factory, await simulator_factory())
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": "a lighthouse"})
    left: list[str] = []
    sent: list[dict[str, Any]] = []

    async def framework(scope: Any, receive: Any, send: Any) -> None:
        left.append(f"{scope['method']} {scope['path']} {dict(scope['headers'])}")

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    app = cast(Any, SimpleNamespace(state=SimpleNamespace(services=gateway.services)))
    serve = fetch_first(app, framework, cors=True)
    key = (b"authorization", f"Bearer {client.key}".encode())
    path = f"/mj/task/{task_id}/fetch"

    def scope(method: str, path: str, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
        return {"type": "http", "method": method, "path": path, "headers": [key, *headers]}

    await serve(scope("GET", path, (b"host", b"relay.example.test:8080")), receive, send)
    assert left == []
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"])["id"] == task_id
    for leaves in (
        scope("GET", path + "/"),
        scope("HEAD", path),
        scope("GET", path, (b"origin", b"https://app.example.test")),
        scope("GET", path, (b"host", b"relay example")),
        scope("GET", f"/mj/task/{task_id}/image-seed"),
    ):
        await serve(leaves, receive, send)
    assert len(left) == 5, left
    assert len(sent) == 2


async def test_a_fetch_from_another_origin_gets_the_cors_headers(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, client = await start(gateway_factory, await simulator_factory())
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": "a lighthouse"})
    page = {"Origin": "https://app.example.test"}
    answer = await gateway.http.get(f"/mj/task/{task_id}/fetch", headers=client.headers | page)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


async def test_a_limited_keys_fetches_carry_its_rate_and_are_refused_alike(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, client = await start(gateway_factory, await simulator_factory())
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": "a lighthouse"})
    await succeed(client, task_id)
    limited = Client(
        gateway, client.user_id, await gateway.issue_key(client.user_id, requests_per_minute=4)
    )
    path = f"/mj/task/{task_id}/fetch"
    answers = [await gateway.http.get(p, headers=limited.headers) for p in (path, path + "/") * 3]
    assert [a.status_code for a in answers] == [200] * 4 + [429] * 2
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["3", "2", "1", "0", "0", "0"]
    assert _seen(answers[0]) == _seen(answers[1])
    assert _seen(answers[4])[:2] == _seen(answers[5])[:2]
    assert answers[4].headers["retry-after"]
    assert answers[5].headers["retry-after"]


async def test_fetches_are_counted_under_the_routes_name_and_so_is_what_no_route_takes(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, client = await start(gateway_factory, await simulator_factory())
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": "a lighthouse"})
    before = await scrape(gateway)
    for path in (f"/mj/task/{task_id}/fetch", f"/mj/task/{task_id}/fetch/", "/mj/nowhere"):
        await client.get(path)
    after = await scrape(gateway)

    def counted(route: str) -> float:
        name = "gateway_http_requests_total"
        return metric_value(after, name, route=route) - metric_value(before, name, route=route)

    assert counted(ROUTE) == 2
    assert counted("/mj-fast" + ROUTE) == 0
    assert counted("unmatched") == 1
