"""``/api/me`` and the money routes of ``/api/admin``, over HTTP against a running gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.api.helpers import RED
from tests.conftest import Client, Gateway, StartGateway, StartSimulator

IMAGINE_UNITS = 100_000
DESCRIBE_UNITS = 50_000
ADMIN_TOKEN = "admin-test-token-1"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def _gateway(gateway_factory: StartGateway) -> Gateway:
    return await gateway_factory(admin={"tokens": [ADMIN_TOKEN, "another-token"]})


async def test_me_shows_balance_key_limit_and_usage_by_action_and_day(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await _gateway(gateway_factory)
    simulator = await simulator_factory(task_timeout_s=5000)
    await gateway.add_channel(simulator)
    user_id = await gateway.create_user("ines", 1_000_000)
    client = Client(
        gateway, user_id, await gateway.issue_key(user_id, name="main", quota_units=600_000)
    )
    other = Client(gateway, user_id, await gateway.issue_key(user_id, name="spare"))

    ok = await client.post("/mj/submit/imagine", {"prompt": "a crane"})
    bad = await client.post("/mj/submit/imagine", {"prompt": "a crane [[sim:fail_banned]]"})
    spare = await other.post("/mj/submit/describe", {"base64": RED})
    for answer in (ok, bad, spare):
        assert answer.json()["code"] == 1, answer.text
    await client.wait_for(ok.json()["result"], {"SUCCESS"})
    await client.wait_for(bad.json()["result"], {"FAILURE"})
    await other.wait_for(spare.json()["result"], {"SUCCESS"})

    me = (await client.get("/api/me")).json()

    today = datetime.now(UTC).date().isoformat()
    assert me["userId"] == user_id
    assert me["balanceUnits"] == 1_000_000 - IMAGINE_UNITS - DESCRIBE_UNITS
    assert me["key"]["name"] == "main"
    assert me["key"]["limitUnits"] == 600_000 - IMAGINE_UNITS
    assert me["key"]["hint"].startswith("sk-")
    assert me["until"] == today
    assert me["usage"] == [
        {"day": today, "action": "mj_describe", "charges": 1, "chargedUnits": DESCRIBE_UNITS,
         "refunds": 0, "refundedUnits": 0},
        {"day": today, "action": "mj_imagine", "charges": 2, "chargedUnits": 2 * IMAGINE_UNITS,
         "refunds": 1, "refundedUnits": IMAGINE_UNITS},
    ]  # fmt: skip
    assert [row["action"] for row in me["keyUsage"]] == ["mj_imagine"]
    later = await client.get("/api/me", params={"since": "2020-01-01", "until": "2020-01-31"})
    assert later.json()["usage"] == []
    nobody = await gateway.http.get("/api/me")
    assert (nobody.status_code, nobody.json()["code"]) == (401, 24)
    silly = await client.get("/api/me", params={"since": "yesterday"})
    assert (silly.status_code, silly.json()["code"]) == (400, 21)


async def test_admin_tokens_guard_every_admin_route(gateway_factory: StartGateway) -> None:
    gateway = await _gateway(gateway_factory)
    client = await gateway.client_with_key(balance_units=10)
    routes = [
        ("POST", f"/api/admin/users/{client.user_id}/topups", {"units": 5, "reason": "x"}),
        ("POST", f"/api/admin/users/{client.user_id}/adjustments", {"units": 5, "reason": "x"}),
        ("PUT", f"/api/admin/keys/{await client.key_id()}/limit", {"units": 5}),
        ("GET", "/api/admin/usage", None),
        ("GET", "/api/admin/reconciliation", None),
    ]
    for method, path, body in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, client.headers):
            answer = await gateway.http.request(method, path, json=body, headers=headers)
            assert (answer.status_code, answer.json()["code"]) == (401, 24), (path, headers)
        answer = await gateway.http.request(
            method, path, json=body, headers={"Authorization": "Bearer another-token"}
        )
        assert answer.status_code == 200, (path, answer.text)
    assert await client.balance() == 20
    closed = await gateway_factory()
    answer = await closed.http.get("/api/admin/usage", headers=ADMIN)
    assert answer.status_code == 401


async def test_admin_topups_adjustments_key_limits_and_usage(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await _gateway(gateway_factory)
    simulator = await simulator_factory(task_timeout_s=5000)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=0)
    http: httpx.AsyncClient = gateway.http

    async def admin(method: str, path: str, body: object = None) -> httpx.Response:
        return await http.request(method, f"/api/admin{path}", json=body, headers=ADMIN)

    refused = await client.post("/mj/submit/imagine", {"prompt": "an owl"})
    assert (refused.status_code, refused.json()["code"]) == (403, 25)
    paid = {"units": 3 * IMAGINE_UNITS, "reason": "card payment", "reference": "pay_81"}
    first = await admin("POST", f"/users/{client.user_id}/topups", paid)
    again = await admin("POST", f"/users/{client.user_id}/topups", paid)
    assert first.json() == {"applied": True, "balanceUnits": 300_000, "source": "topup:pay_81"}
    assert again.json() == {"applied": False, "balanceUnits": 300_000, "source": "topup:pay_81"}
    down = await admin("POST", f"/users/{client.user_id}/adjustments",
                       {"units": -IMAGINE_UNITS, "reason": "chargeback"})  # fmt: skip
    assert down.json()["balanceUnits"] == 200_000
    limited = await admin("PUT", f"/keys/{await client.key_id()}/limit",
                          {"units": IMAGINE_UNITS, "reason": "trial"})  # fmt: skip
    assert limited.json() == {"keyId": await client.key_id(), "limitUnits": IMAGINE_UNITS}

    ok = await client.post("/mj/submit/imagine", {"prompt": "an owl"})
    over = await client.post("/mj/submit/imagine", {"prompt": "another owl"})
    assert ok.json()["code"] == 1
    assert (over.status_code, over.json()["code"]) == (403, 25)
    usage = (await admin("GET", "/usage", None)).json()["usage"]
    assert [(u["action"], u["charges"], u["chargedUnits"]) for u in usage] == [
        ("mj_imagine", 1, IMAGINE_UNITS)
    ]
    mine = await http.get("/api/admin/usage", params={"userId": client.user_id}, headers=ADMIN)
    assert mine.json()["usage"] == usage
    nobody = await http.get("/api/admin/usage", params={"userId": 999_999}, headers=ADMIN)
    assert nobody.json()["usage"] == []
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    old = await http.get("/api/admin/usage", params={"until": yesterday}, headers=ADMIN)
    assert old.json()["usage"] == []
    report = (await admin("GET", "/reconciliation")).json()
    assert report["ok"] is True, report

    for path, body, status in [
        (f"/users/{client.user_id}/topups", {"units": -1, "reason": "x"}, 400),
        (f"/users/{client.user_id}/topups", {"units": 1}, 400),
        (f"/users/{client.user_id}/topups", {"units": 1, "reason": "x", "extra": 1}, 400),
        (f"/users/{client.user_id}/adjustments", {"units": -(10**9), "reason": "x"}, 400),
        ("/users/999999/topups", {"units": 1, "reason": "x"}, 404),
    ]:
        answer = await admin("POST", path, body)
        assert (answer.status_code, answer.json()["code"]) == (status, 21), (path, answer.text)
    assert (await admin("PUT", "/keys/999999/limit", {"units": 1})).status_code == 404
    assert await client.balance() == 100_000


async def test_operator_prices_modes_and_groups_apply_to_new_tasks_only(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(
        admin={"tokens": [ADMIN_TOKEN]}, relay={"price_cache_s": 0, "auth_cache_ttl_s": 0}
    )
    simulator = await simulator_factory(task_timeout_s=100_000, speed_factor=1.0)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=10_000_000)
    http = gateway.http

    async def admin(method: str, path: str, body: object = None) -> httpx.Response:
        answer = await http.request(method, f"/api/admin{path}", json=body, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        return answer

    before = await client.post("/mj/submit/imagine", {"prompt": "a slow fox"})
    await admin("PUT", "/prices/mj_imagine", {"units": 300_000})
    await admin("PUT", "/modes/RELAX", {"ratioBp": 2_500})
    await admin("PUT", "/groups/resellers", {"ratioBp": 8_000, "description": "20% off"})
    await admin("PUT", f"/users/{client.user_id}/group", {"group": "resellers"})
    after = await client.post("/mj-relax/mj/submit/imagine", {"prompt": "a slow fox"})

    prices = {
        int(answer.json()["result"]): await gateway.services.pool.fetchval(
            "SELECT price_units FROM tasks WHERE id = $1", int(answer.json()["result"])
        )
        for answer in (before, after)
    }
    assert list(prices.values()) == [IMAGINE_UNITS, 300_000 * 2_500 * 8_000 // 10_000**2]
    assert await client.balance() == 10_000_000 - IMAGINE_UNITS - 60_000
    book = (await admin("GET", "/prices")).json()
    assert book["pricesUnits"]["mj_imagine"] == 300_000
    assert book["modeRatiosBp"]["RELAX"] == 2_500
    assert {"name": "resellers", "ratioBp": 8_000, "description": "20% off"} in book["groups"]
    for path, body in [
        ("/prices/imagine", {"units": 1}),
        ("/prices/mj_imagine", {"units": -1}),
        ("/modes/SLOW", {"ratioBp": 1}),
        ("/groups/Bad Name", {"ratioBp": 1}),
        (f"/users/{client.user_id}/group", {"group": "nobody"}),
    ]:
        answer = await http.put(f"/api/admin{path}", json=body, headers=ADMIN)
        assert (answer.status_code, answer.json()["code"]) == (400, 21), (path, answer.text)
