"""Client authentication and authorisation: the three key forms, and every refusal.

In each refused case nothing is charged and the simulator sees no request.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway import admin
from gateway.simulator import RunningSimulator
from tests.api.helpers import (
    PRICE,
    RED,
    START_BALANCE,
    assert_error,
    button,
    sim_routes,
    start,
    submit,
    submitted_id,
    succeed,
)
from tests.conftest import Client, Gateway, StartGateway

IMAGINE = {"prompt": "a serene koi pond"}


async def _refused(
    gateway: Gateway,
    simulator: RunningSimulator,
    headers: dict[str, str],
    status: int | tuple[int, ...],
    code: int,
    *,
    user_id: int | None = None,
    balance: int = START_BALANCE,
) -> None:
    """An imagine with these headers is refused; nothing charged, nothing sent upstream."""
    before = await sim_routes(gateway.http, simulator)
    response = await gateway.http.post("/mj/submit/imagine", json=IMAGINE, headers=headers)
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text)
    assert_error(response, response.status_code, code)
    assert await sim_routes(gateway.http, simulator) == before
    if user_id is not None:
        assert await gateway.balance(user_id) == balance


@pytest.mark.parametrize(
    "form",
    [
        "bearer",
        "bare",
        "secret-only",
        "secret-empty-authorization",
        "secret-placeholder-authorization",
    ],
)
async def test_each_key_form_works(
    gateway_factory: StartGateway, simulator: RunningSimulator, form: str
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    headers = {
        "bearer": {"Authorization": f"Bearer {client.key}"},
        "bare": {"Authorization": client.key},
        "secret-only": {"mj-api-secret": client.key},
        "secret-empty-authorization": {"Authorization": "", "mj-api-secret": client.key},
        "secret-placeholder-authorization": {
            "Authorization": "midjourney-proxy",
            "mj-api-secret": client.key,
        },
    }[form]
    response = await gateway.http.post("/mj/submit/imagine", json=IMAGINE, headers=headers)
    task_id = submitted_id(response)
    assert await client.balance() == START_BALANCE - PRICE["mj_imagine"]
    fetched = await gateway.http.get(f"/mj/task/{task_id}/fetch", headers=headers)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["id"] == task_id
    await succeed(client, task_id)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "midjourney-proxy"},
        {"mj-api-secret": ""},
    ],
    ids=["none", "empty", "bearer-no-key", "placeholder-only", "empty-secret"],
)
async def test_missing_key_is_401(
    gateway_factory: StartGateway, simulator: RunningSimulator, headers: dict[str, str]
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    await _refused(gateway, simulator, headers, 401, 24, user_id=client.user_id)
    assert_error(await gateway.http.get("/mj/task/list", headers=headers), 401, 24)


async def test_wrong_key_is_401(gateway_factory: StartGateway, simulator: RunningSimulator) -> None:
    gateway, client = await start(gateway_factory, simulator)
    wrong = "sk-" + secrets.token_urlsafe(36)
    await _refused(gateway, simulator, {"Authorization": f"Bearer {wrong}"}, 401, 24)
    await _refused(gateway, simulator, {"mj-api-secret": wrong}, 401, 24)
    await _refused(gateway, simulator, {"Authorization": client.key[:-1]}, 401, 24)
    # A wrong key in Authorization is not rescued by a right one in mj-api-secret.
    both = {"Authorization": f"Bearer {wrong}", "mj-api-secret": client.key}
    await _refused(gateway, simulator, both, 401, 24, user_id=client.user_id)


async def test_expired_key_is_403(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, _ = await start(gateway_factory, simulator)
    user_id = await gateway.create_user("carol")
    key = await gateway.issue_key(user_id, expires_at=datetime.now(UTC) - timedelta(minutes=1))
    await _refused(gateway, simulator, {"Authorization": f"Bearer {key}"}, 403, 24, user_id=user_id)
    fresh = await gateway.issue_key(user_id, expires_at=datetime.now(UTC) + timedelta(hours=1))
    await submit(Client(gateway, user_id, fresh), "/mj/submit/imagine", IMAGINE)
    assert await gateway.balance(user_id) == START_BALANCE - PRICE["mj_imagine"]


async def test_disabled_user_is_403(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, _ = await start(gateway_factory, simulator)
    user_id = await gateway.create_user("dave")
    key = await gateway.issue_key(user_id)
    await gateway.services.pool.execute("UPDATE users SET enabled = FALSE WHERE id = $1", user_id)
    await _refused(gateway, simulator, {"Authorization": f"Bearer {key}"}, 403, 24, user_id=user_id)


async def test_disabled_key_is_403(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, _ = await start(gateway_factory, simulator)
    user_id = await gateway.create_user("erin")
    key = await gateway.issue_key(user_id)
    await gateway.services.pool.execute(
        "UPDATE api_keys SET enabled = FALSE WHERE user_id = $1", user_id
    )
    await _refused(gateway, simulator, {"Authorization": f"Bearer {key}"}, 403, 24, user_id=user_id)


async def test_address_outside_allowed_cidrs_is_403(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, _ = await start(gateway_factory, simulator)
    user_id = await gateway.create_user("frank")
    key = await gateway.issue_key(user_id, allowed_cidrs=["10.0.0.0/8"])
    await _refused(gateway, simulator, {"Authorization": f"Bearer {key}"}, 403, 24, user_id=user_id)
    assert_error(await gateway.http.get("/mj/task/list", headers={"Authorization": key}), 403, 24)
    loopback = await gateway.issue_key(user_id, allowed_cidrs=["10.0.0.0/8", "127.0.0.0/8"])
    await submit(Client(gateway, user_id, loopback), "/mj/submit/imagine", IMAGINE)
    assert await gateway.balance(user_id) == START_BALANCE - PRICE["mj_imagine"]


async def test_action_not_allowed_for_the_key_is_403(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, _ = await start(gateway_factory, simulator)
    user_id = await gateway.create_user("grace")
    key = await gateway.issue_key(user_id, allowed_actions=["mj_describe"])
    await _refused(gateway, simulator, {"Authorization": f"Bearer {key}"}, 403, 24, user_id=user_id)
    client = Client(gateway, user_id, key)
    task_id = await submit(client, "/mj/submit/describe", {"base64": RED})
    assert await client.balance() == START_BALANCE - PRICE["mj_describe"]
    await succeed(client, task_id)


async def test_revoked_key_is_refused_at_once(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, _ = await start(gateway_factory, simulator)
    user_id = await gateway.create_user("heidi")
    issued = await admin.issue_key(gateway.services.pool, user_id)
    headers = {"Authorization": f"Bearer {issued.key}"}
    listed = await gateway.http.get("/mj/task/list", headers=headers)
    assert listed.status_code == 200, listed.text

    key_hash = await admin.revoke_key(gateway.services.pool, issued.key_id)
    await gateway.services.auth.announce_revocation(key_hash)
    await _refused(gateway, simulator, headers, (401, 403), 24, user_id=user_id)
    listed = await gateway.http.get("/mj/task/list", headers=headers)
    assert listed.status_code in (401, 403), listed.text
    assert_error(listed, listed.status_code, 24)


async def test_revocation_reaches_another_replica(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    first, _ = await start(gateway_factory, simulator)
    second = await gateway_factory(relay={"auth_cache_ttl_s": 300.0})
    user_id = await first.create_user("ivan")
    issued = await admin.issue_key(first.services.pool, user_id)
    headers = {"Authorization": f"Bearer {issued.key}"}
    assert (await second.http.get("/mj/task/list", headers=headers)).status_code == 200

    key_hash = await admin.revoke_key(first.services.pool, issued.key_id)
    await first.services.auth.announce_revocation(key_hash)
    deadline = asyncio.get_running_loop().time() + 2.0
    status = 200
    while asyncio.get_running_loop().time() < deadline:
        status = (await second.http.get("/mj/task/list", headers=headers)).status_code
        if status != 200:
            break
        await asyncio.sleep(0.02)
    assert status in (401, 403), "the other replica still accepts the revoked key"
    await _refused(second, simulator, headers, (401, 403), 24, user_id=user_id)


FOREIGN_CALLS: list[tuple[str, str, Any]] = [
    ("GET", "/mj/task/{id}/fetch", None),
    ("GET", "/mj/task/{id}/image-seed", None),
    ("POST", "/mj/submit/action", {"taskId": "{id}", "customId": "{u1}"}),
    ("POST", "/mj/submit/change", {"taskId": "{id}", "action": "UPSCALE", "index": 1}),
    ("POST", "/mj/submit/simple-change", {"content": "{id} V2"}),
    ("POST", "/mj/submit/modal", {"taskId": "{id}", "prompt": "x --zoom 1.5"}),
]


def _fill(value: Any, task_id: str, u1: str) -> Any:
    if isinstance(value, str):
        return value.replace("{id}", task_id).replace("{u1}", u1)
    if isinstance(value, dict):
        return {k: _fill(v, task_id, u1) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("method", "path", "body"), FOREIGN_CALLS, ids=[p for _, p, _ in FOREIGN_CALLS]
)
async def test_another_users_task_is_404(
    gateway_factory: StartGateway,
    simulator: RunningSimulator,
    method: str,
    path: str,
    body: Any,
) -> None:
    gateway, alice = await start(gateway_factory, simulator)
    bob = await gateway.client_with_key(name="bob")
    task_id = await submit(alice, "/mj/submit/imagine", IMAGINE)
    u1 = button(await succeed(alice, task_id), label="U1")
    alice_balance = START_BALANCE - PRICE["mj_imagine"]
    assert await alice.balance() == alice_balance

    before = await sim_routes(gateway.http, simulator)
    url = _fill(path, task_id, u1)
    if method == "GET":
        response = await bob.get(url)
    else:
        response = await bob.post(url, _fill(body, task_id, u1))
    assert_error(response, 404, 21)
    listed = await bob.post("/mj/task/list-by-condition", {"ids": [task_id]})
    assert listed.status_code == 200, listed.text
    assert listed.json() == []
    assert task_id not in [t["id"] for t in (await bob.get("/mj/task/list")).json()]
    assert await sim_routes(gateway.http, simulator) == before
    assert await bob.balance() == START_BALANCE
    assert await alice.balance() == alice_balance

    # The same call by the owner is not refused as unknown: the 404 was about ownership.
    if method == "GET":
        own = await alice.get(url)
    else:
        own = await alice.post(url, _fill(body, task_id, u1))
    assert own.status_code != 404, own.text
