"""Browsers call the gateway from pages on other origins: preflights answered, the key headers
allowed, images readable on a canvas; never with credentials; origins configurable."""

from __future__ import annotations

import httpx

from gateway.simulator import RunningSimulator
from tests.api.helpers import start, submit, succeed
from tests.conftest import StartGateway

PAGE = "http://app.example.test:5173"


async def test_a_preflight_allows_the_key_headers_and_json(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, _ = await start(gateway_factory, simulator)
    for path in ("/mj/submit/imagine", "/mj-relax/mj/task/list-by-condition"):
        answer = await gateway.http.options(
            path,
            headers={
                "Origin": PAGE,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "mj-api-secret, content-type, idempotency-key",
            },
        )
        assert answer.status_code == 204, answer.text
        assert answer.headers["access-control-allow-origin"] == "*"
        allowed = {
            h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")
        }
        assert {"authorization", "mj-api-secret", "content-type", "idempotency-key"} <= allowed
        assert "access-control-allow-credentials" not in answer.headers


async def test_answers_and_images_are_readable_from_another_origin(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    origin = {"Origin": PAGE}
    submitted = await client.post("/mj/submit/imagine", {"prompt": "a kite"}, headers=origin)
    assert submitted.headers["access-control-allow-origin"] == "*"
    task = await succeed(client, submitted.json()["result"])
    async with httpx.AsyncClient(timeout=10.0) as browser:
        image = await browser.get(task["imageUrl"], headers=origin)
    assert image.status_code == 200
    assert image.headers["access-control-allow-origin"] == "*"
    refused = await gateway.http.get("/mj/task/list", headers=origin)  # no key: still readable
    assert (refused.status_code, refused.headers["access-control-allow-origin"]) == (401, "*")


async def test_only_the_configured_origins_are_allowed(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway = await gateway_factory(server={"cors_origins": [PAGE]})
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key()
    mine = await gateway.http.get("/mj/task/list", headers={**client.headers, "Origin": PAGE})
    other = await gateway.http.get(
        "/mj/task/list", headers={**client.headers, "Origin": "http://evil.example.test"}
    )
    assert mine.headers["access-control-allow-origin"] == PAGE
    assert "access-control-allow-origin" not in other.headers
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": "a kite"})
    assert task_id

    closed = await gateway_factory(server={"cors_origins": []})
    answer = await closed.http.get("/healthz", headers={"Origin": PAGE})
    assert "access-control-allow-origin" not in answer.headers
