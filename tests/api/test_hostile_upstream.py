"""A hostile or broken upstream: task objects the gateway cannot store are refused one at a time.

Through callbacks (with a valid token) and through the poller, every such object is answered or
skipped, logged and counted; the rest of its batch goes on, and nothing is ever a 500.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import ClientSession, web

from gateway.simulator import RunningSimulator
from gateway.tasks.callbacks import CALLBACK_PATH
from tests.api.helpers import assert_error, metric_value, scrape, submitted_id, upstream_id
from tests.conftest import Gateway, StartGateway, StartSimulator

Mutation = Callable[[dict[str, Any]], bytes]


def _with(**changes: Any) -> Mutation:
    return lambda obj: json.dumps({**obj, **changes}).encode()


def _raw_prompt(raw: bytes) -> Mutation:
    """The object with its prompt's JSON text replaced by ``raw`` bytes, as sent."""

    def mutate(obj: dict[str, Any]) -> bytes:
        text = json.dumps({**obj, "prompt": "PLACEHOLDER"}).encode()
        return text.replace(b'"PLACEHOLDER"', raw)

    return mutate


VICTIM = "victim"
DEEP = b"[" * 100_000 + b"]" * 100_000
HOSTILE: dict[str, tuple[Mutation, str]] = {
    "superscript progress": (_with(progress="²%"), "progress"),
    "5000-digit progress": (_with(progress="9" * 5000 + "%"), "progress"),
    "huge startTime": (_with(startTime=10**30), "time"),
    "NUL in text": (_with(prompt="a\u0000b"), "json"),
    "invalid UTF-8": (_raw_prompt(b'"\xff\xfe bad"'), "json"),
    "deep nesting": (_raw_prompt(DEEP), "json"),
    "file image URL": (_with(imageUrl="file:///etc/passwd"), "image_url"),
    "buttons not a list": (_with(buttons={"customId": "x"}), "buttons"),
}


class RewritingUpstream:
    """A channel in front of a simulator that rewrites, in list answers, the object of every
    task whose prompt names the victim."""

    def __init__(self, simulator: RunningSimulator) -> None:
        self.simulator = simulator
        self._target = simulator.base_url
        self.mutation: Mutation | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> RewritingUpstream:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with (
            ClientSession() as session,
            session.request(
                request.method,
                f"{self._target}{request.rel_url}",
                data=await request.read(),
                headers=headers,
            ) as answer,
        ):
            body = await answer.read()
            status = answer.status
        if request.path.endswith("/task/list-by-condition") and status == 200 and body.strip():
            items = [
                self.mutation(obj)
                if self.mutation and VICTIM in (obj.get("prompt") or "")
                else json.dumps(obj).encode()
                for obj in json.loads(body)
            ]
            body = b"[" + b",".join(items) + b"]"
        return web.Response(body=body, status=status, content_type="application/json")


@pytest.fixture
async def rewriting(simulator_factory: StartSimulator) -> Any:
    upstream = await RewritingUpstream(await simulator_factory(speed_factor=300.0)).start()
    yield upstream
    await upstream.stop()


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_one_unfit_object_is_refused_and_the_rest_of_its_batch_goes_on(
    gateway_factory: StartGateway, rewriting: RewritingUpstream, case: str
) -> None:
    mutation, reason = HOSTILE[case]
    refused = "gateway_upstream_task_objects_refused_total"
    gateway = await gateway_factory()
    await gateway.add_channel(rewriting.simulator, base_url=rewriting.base_url)
    client = await gateway.client_with_key()
    before = metric_value(await scrape(gateway), refused, reason=reason)
    rewriting.mutation = mutation
    ids = [
        submitted_id(await client.post("/mj/submit/imagine", {"prompt": prompt}))
        for prompt in (f"a {VICTIM}", "a fox", "a hare", "a wren")
    ]
    victim = ids[0]

    for task_id in ids[1:]:
        assert (await client.wait_for(task_id, {"SUCCESS", "FAILURE"}))["status"] == "SUCCESS"
    await asyncio.sleep(0.5)  # many more polls: the victim is neither applied nor "forgotten"
    stuck = (await client.get(f"/mj/task/{victim}/fetch")).json()
    assert stuck["status"] in {"NOT_START", "SUBMITTED", "IN_PROGRESS"}, stuck
    assert metric_value(await scrape(gateway), refused, reason=reason) > before

    rewriting.mutation = None  # the channel mends: the task ends as the upstream says
    assert (await client.wait_for(victim, {"SUCCESS", "FAILURE"}))["status"] == "SUCCESS"


async def _callback_target(gateway: Gateway, simulator: RunningSimulator) -> tuple[str, str]:
    """(callback path of an open task, that task's upstream object as the upstream sends it)."""
    channel_id = await gateway.add_channel(simulator)
    channel = await gateway.services.channels.get(channel_id)
    assert channel is not None
    client = await gateway.client_with_key()
    task_id = submitted_id(await client.post("/mj/submit/imagine", {"prompt": "a wren"}))
    obj = {"id": await upstream_id(gateway, task_id), "status": "IN_PROGRESS", "progress": "15%"}
    return f"{CALLBACK_PATH}/{channel.callback_token}/{task_id}", json.dumps(obj)


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_a_callback_with_an_unfit_task_object_is_400_and_changes_nothing(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, case: str
) -> None:
    gateway = await gateway_factory(relay={"poll_interval_s": 3600.0})
    path, fit = await _callback_target(gateway, await simulator_factory(speed_factor=1.0))
    mutation, reason = HOSTILE[case]
    refused = "gateway_upstream_task_objects_refused_total"
    before = metric_value(await scrape(gateway), refused, reason=reason)

    answer = await gateway.http.post(path, content=mutation(json.loads(fit)))

    assert_error(answer, 400, 21)
    task_id = int(path.rsplit("/", 1)[1])
    row = await gateway.services.pool.fetchrow(
        "SELECT status, progress FROM tasks WHERE id = $1", task_id
    )
    assert (row["status"], row["progress"]) != ("IN_PROGRESS", "15%")
    assert metric_value(await scrape(gateway), refused, reason=reason) == before + 1
    applied = await gateway.http.post(path, content=fit)  # the same channel, a fit object
    assert applied.json() == {"outcome": "applied"}


@pytest.mark.parametrize("task_id", [str(2**63), "9" * 5000, "-1", "1e3", "١٢٣"])
async def test_a_callback_for_an_id_that_cannot_be_a_task_is_404(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, task_id: str
) -> None:
    gateway = await gateway_factory(relay={"poll_interval_s": 3600.0})
    path, fit = await _callback_target(gateway, await simulator_factory(speed_factor=1.0))
    assert_error(
        await gateway.http.post(f"{path.rsplit('/', 1)[0]}/{task_id}", content=fit), 404, 21
    )


async def _raw_post(gateway: Gateway, path: str, announced: int, sent: bytes) -> bytes:
    """POST announcing ``announced`` body bytes and sending only ``sent``; the answer's head."""
    host, port = gateway.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {announced}\r\n\r\n"
    writer.write(head.encode() + sent)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5.0)
    finally:
        writer.close()


async def test_an_oversized_callback_is_404_before_its_body_when_the_token_is_unknown(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(relay={"poll_interval_s": 3600.0})
    path, _ = await _callback_target(gateway, await simulator_factory(speed_factor=1.0))
    unknown = f"{CALLBACK_PATH}/not-a-token/{path.rsplit('/', 1)[1]}"

    assert (await _raw_post(gateway, unknown, 32 * 1024 * 1024, b"{")).startswith(b"HTTP/1.1 404")
    assert (await _raw_post(gateway, path, 2 * 1024 * 1024, b"{")).startswith(b"HTTP/1.1 413")
