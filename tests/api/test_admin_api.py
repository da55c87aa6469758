"""The operator's ``/api/admin`` routes for users, keys, channels, tasks and the ledger, and the
OpenAPI document, over HTTP against a running gateway and the simulator."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from gateway.sealing import SecretBox
from gateway.storage.channels import SECRET_PURPOSE
from tests.conftest import SIMULATOR_SECRET, Client, Gateway, StartGateway, StartSimulator
from tests.processes import StartGatewayProcess
from tests.support import BOX

ADMIN_TOKEN = "admin-token-for-the-operator-routes"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
IMAGINE_UNITS = 100_000


class Operator:
    """The admin API as an operator's script calls it."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.answers: list[str] = []

    async def call(
        self, method: str, path: str, body: Any = None, expect: int = 200, **params: Any
    ) -> Any:
        answer = await self.http.request(
            method, f"/api/admin{path}", json=body, params=params or None, headers=ADMIN
        )
        self.answers.append(answer.text)
        assert answer.status_code == expect, (method, path, answer.text)
        return answer.json()

    async def refused(
        self, method: str, path: str, body: Any = None, expect: int = 400, **params: Any
    ) -> str:
        found = await self.call(method, path, body, expect, **params)
        assert (found["code"], found["result"]) == (21, None), found
        description: str = found["description"]
        return description


async def _setup(gateway_factory: StartGateway, **relay: Any) -> tuple[Gateway, Operator]:
    gateway = await gateway_factory(admin={"tokens": [ADMIN_TOKEN]}, relay=relay)
    return gateway, Operator(gateway.http)


def _client(gateway: Gateway, user_id: int, key: str) -> Client:
    return Client(gateway, user_id, key)


async def test_users_are_created_listed_disabled_and_enabled_at_once(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, operator = await _setup(gateway_factory, auth_cache_ttl_s=60)
    await gateway.add_channel(await simulator_factory())

    await operator.call("PUT", "/groups/vip", {"ratioBp": 5_000})
    ana = await operator.call(
        "POST", "/users", {"name": "ana", "balanceUnits": 500_000, "group": "vip"}, expect=201
    )
    bo = await operator.call("POST", "/users", {"name": "bo"}, expect=201)
    assert {k: ana[k] for k in ("name", "groupName", "balanceUnits", "enabled", "keys")} == {
        "name": "ana", "groupName": "vip", "balanceUnits": 500_000, "enabled": True, "keys": 0,
    }  # fmt: skip
    listed = await operator.call("GET", "/users")
    assert [u["name"] for u in listed["users"]] == ["bo", "ana"]
    page = await operator.call("GET", "/users", limit=1, before=bo["id"])
    assert [u["name"] for u in page["users"]] == ["ana"]
    assert [u["name"] for u in (await operator.call("GET", "/users", namePrefix="b"))["users"]] == [
        "bo"
    ]
    issued = await operator.call("POST", f"/users/{ana['id']}/keys", {"name": "main"}, expect=201)
    client = _client(gateway, ana["id"], issued["key"])
    assert (await client.post("/mj/submit/imagine", {"prompt": "a heron"})).json()["code"] == 1
    assert (await operator.call("GET", f"/users/{ana['id']}"))["keys"] == 1

    disabled = await operator.call("POST", f"/users/{ana['id']}/disable")
    assert disabled["enabled"] is False
    refused = await client.post("/mj/submit/imagine", {"prompt": "a heron"})
    assert (refused.status_code, refused.json()["code"]) == (403, 24)  # despite a 60 s cache
    await operator.call("POST", f"/users/{ana['id']}/enable")
    again = await client.post("/mj/submit/imagine", {"prompt": "a heron"})
    assert again.json()["code"] == 1, again.text
    assert await client.balance() == 500_000 - 2 * IMAGINE_UNITS // 2  # the vip group pays half

    await operator.refused("POST", "/users", {"name": "bo"})
    assert "no group" in await operator.refused("POST", "/users", {"name": "cy", "group": "x"})
    await operator.refused("POST", "/users", {"name": "cy", "balanceUnits": -1})
    await operator.refused("POST", "/users", {"name": "cy", "balance": 1})
    await operator.refused("POST", "/users", {"name": "c\u0000y"})
    await operator.refused("GET", "/users/999999", expect=404)
    await operator.refused("POST", "/users/999999/disable", expect=404)
    await operator.refused("GET", "/users", limit=0)
    await operator.refused("GET", "/users/99999999999999999999")  # past 64 bits
    await operator.refused("GET", "/users", before=10**20)
    await operator.refused("GET", "/users", namePrefix="a\u0000")
    await operator.refused("PUT", f"/users/{bo['id']}/group", {"group": "v\u0000"})


async def test_keys_are_issued_once_listed_without_secrets_revoked_and_limited(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, operator = await _setup(gateway_factory, auth_cache_ttl_s=60)
    await gateway.add_channel(await simulator_factory())
    user = await operator.call("POST", "/users", {"name": "dee", "balanceUnits": 10**6}, expect=201)
    expires = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    issued = await operator.call(
        "POST",
        f"/users/{user['id']}/keys",
        {"name": "ci", "limitUnits": 150_000, "expiresAt": expires,
         "allowedActions": ["mj_imagine"], "requestsPerMinute": 100, "maxOpenTasks": 3},
        expect=201,
    )  # fmt: skip
    spare = await operator.call("POST", f"/users/{user['id']}/keys", {}, expect=201)
    assert issued["key"].startswith("sk-")
    assert len(issued["key"]) >= 35
    client = _client(gateway, user["id"], issued["key"])

    keys = (await operator.call("GET", "/keys", userId=user["id"]))["keys"]
    assert [k["id"] for k in keys] == [spare["keyId"], issued["keyId"]]
    ci = keys[1]
    assert ci["hint"].startswith("sk-")
    assert ci["hint"] != issued["key"]
    assert (ci["name"], ci["limitUnits"], ci["allowedActions"]) == ("ci", 150_000, ["mj_imagine"])
    assert (ci["requestsPerMinute"], ci["maxOpenTasks"]) == (100, 3)
    assert datetime.fromisoformat(ci["expiresAt"]) == datetime.fromisoformat(expires)
    listing = json.dumps(keys)
    assert issued["key"] not in listing
    assert spare["key"] not in listing
    assert "hash" not in listing.lower()

    assert (await client.post("/mj/submit/imagine", {"prompt": "a kite"})).json()["code"] == 1
    shorten = await client.post("/mj/submit/shorten", {"prompt": "a kite"})
    assert (shorten.status_code, shorten.json()["code"]) == (403, 24)
    await operator.call("PUT", f"/keys/{issued['keyId']}/limit", {"units": 0, "reason": "cap"})
    broke = await client.post("/mj/submit/imagine", {"prompt": "a kite"})
    assert (broke.status_code, broke.json()["code"]) == (403, 25)

    await operator.call("POST", f"/keys/{issued['keyId']}/revoke")
    revoked = await client.get("/mj/task/list")
    assert (revoked.status_code, revoked.json()["code"]) == (403, 24)  # despite a 60 s cache
    assert [k["id"] for k in (await operator.call("GET", "/keys"))["keys"]] == [spare["keyId"]]
    every = (await operator.call("GET", "/keys", includeRevoked="true"))["keys"]
    assert every[1]["revokedAt"] is not None
    await operator.refused("POST", f"/keys/{issued['keyId']}/revoke")
    await operator.refused("POST", "/users/999999/keys", {}, expect=404)
    await operator.refused("POST", f"/users/{user['id']}/keys", {"allowedCidrs": ["not-a-net"]})
    await operator.refused("POST", f"/users/{user['id']}/keys", {"maxOpenTasks": 0})


async def test_channels_are_created_edited_disabled_and_their_secret_never_shown(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, operator = await _setup(gateway_factory)
    simulator = await simulator_factory()
    client = await gateway.client_with_key()
    created = await operator.call(
        "POST",
        "/channels",
        {"name": "up-1", "baseUrl": simulator.base_url, "secret": SIMULATOR_SECRET,
         "weight": 3, "priority": 2, "modes": ["FAST", "RELAX"], "maxInFlight": 40},
        expect=201,
    )  # fmt: skip
    assert created["hasSecret"] is True
    assert (created["weight"], created["priority"], created["maxInFlight"]) == (3, 2, 40)
    assert created["modes"] == ["FAST", "RELAX"]
    assert created["actions"] is None
    stored = await gateway.services.pool.fetchrow(
        "SELECT secret, secret_sealed FROM channels WHERE id = $1", created["id"]
    )
    assert stored is not None
    assert stored["secret"] is None
    assert SIMULATOR_SECRET.encode() not in stored["secret_sealed"]
    assert BOX.open(stored["secret_sealed"], SECRET_PURPOSE) == SIMULATOR_SECRET
    ok = await client.post("/mj/submit/imagine", {"prompt": "a lamp"})
    assert ok.json()["code"] == 1, ok.text  # the simulator accepted the opened secret
    assert created["state"] == "up"
    tested = await operator.call("POST", f"/channels/{created['id']}/test")
    assert (tested["ok"], tested["detail"]) == (True, "answered")
    turbo = await client.post("/mj-turbo/mj/submit/imagine", {"prompt": "a lamp"})
    assert (turbo.status_code, turbo.json()["code"]) == (503, 24)

    edited = await operator.call(
        "PATCH", f"/channels/{created['id']}",
        {"modes": ["FAST", "RELAX", "TURBO"], "actions": ["mj_imagine"], "maxInFlight": None,
         "name": "up-one"},
    )  # fmt: skip
    assert (edited["name"], edited["actions"], edited["maxInFlight"]) == (
        "up-one",
        ["mj_imagine"],
        None,
    )
    assert edited["weight"] == 3  # what the edit did not name stays
    assert (await client.post("/mj-turbo/mj/submit/imagine", {"prompt": "x"})).json()["code"] == 1
    shorten = await client.post("/mj/submit/shorten", {"prompt": "a lamp"})
    assert (shorten.status_code, shorten.json()["code"]) == (503, 24)

    assert (await operator.call("POST", f"/channels/{created['id']}/disable"))[
        "state"
    ] == "disabled"
    off = await client.post("/mj/submit/imagine", {"prompt": "a lamp"})
    assert (off.status_code, off.json()["code"]) == (503, 24)
    back = await operator.call("POST", f"/channels/{created['id']}/enable")
    assert back["enabled"] is True
    assert (await client.post("/mj/submit/imagine", {"prompt": "a lamp"})).json()["code"] == 1

    wrong_secret = "not-the-simulator-secret"
    wrong = await operator.call("PATCH", f"/channels/{created['id']}", {"secret": wrong_secret})
    assert wrong["hasSecret"] is True
    refused = await client.post("/mj/submit/imagine", {"prompt": "a lamp"})
    assert (refused.status_code, refused.json()["code"]) == (503, 24)  # the upstream said 401
    resting = await operator.call("GET", f"/channels/{created['id']}")
    assert (resting["state"], resting["coolingReason"]) == ("cooling", "auth_failed")
    assert datetime.fromisoformat(resting["coolingUntil"]) > datetime.now(UTC)
    tested = await operator.call("POST", f"/channels/{created['id']}/test")
    assert (tested["ok"], tested["detail"]) == (False, "secret refused")
    removed = await operator.call("PATCH", f"/channels/{created['id']}", {"secret": ""})
    assert removed["hasSecret"] is False

    listed = (await operator.call("GET", "/channels"))["channels"]
    assert [c["name"] for c in listed] == ["up-one"]
    assert (await operator.call("GET", f"/channels/{created['id']}"))["name"] == "up-one"
    for body in (
        {"name": "up-2"},
        {"name": "up-2", "baseUrl": "ftp://x"},
        {"name": "up-2", "baseUrl": simulator.base_url, "weight": 0},
        {"name": "up-2", "baseUrl": simulator.base_url, "modes": ["SLOW"]},
        {"name": "up-2", "baseUrl": simulator.base_url, "actions": ["imagine"]},
        {"name": "up-2", "baseUrl": simulator.base_url, "botTypes": []},
        {"name": "up-2", "baseUrl": simulator.base_url, "maxInFlight": 0},
        {"name": "up-one", "baseUrl": simulator.base_url},
        {"name": "up-2", "baseUrl": simulator.base_url, "colour": "red"},
        {"name": "up-2", "baseUrl": simulator.base_url, "secret": "two\nlines"},
        {"name": "up-2", "baseUrl": "http://host\u0000/"},
    ):
        await operator.refused("POST", "/channels", body)
    await operator.refused("PATCH", f"/channels/{created['id']}", {})
    await operator.refused("PATCH", "/channels/999999", {"weight": 2}, expect=404)
    await operator.refused("POST", "/channels/999999/disable", expect=404)
    await operator.refused("POST", "/channels/999999/test", expect=404)
    every_answer = "\n".join(operator.answers)
    assert SIMULATOR_SECRET not in every_answer
    assert wrong_secret not in every_answer
    token = await gateway.services.pool.fetchval("SELECT callback_token FROM channels")
    assert token not in every_answer


async def test_tasks_and_the_ledger_are_searched_by_user_status_channel_and_time(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, operator = await _setup(gateway_factory)
    first = await gateway.add_channel(await simulator_factory(), name="first")
    ana = await gateway.client_with_key(name="ana")
    bo = await gateway.client_with_key(name="bo")
    ok = (await ana.post("/mj/submit/imagine", {"prompt": "a fox"})).json()["result"]
    failed = (await ana.post("/mj/submit/imagine", {"prompt": "a fox [[sim:fail_banned]]"})).json()
    await ana.wait_for(ok, {"SUCCESS"})
    await ana.wait_for(failed["result"], {"FAILURE"})
    middle = datetime.now(UTC)
    await asyncio.sleep(0.01)
    theirs = (await bo.post("/mj/submit/imagine", {"prompt": "a wolf"})).json()["result"]

    def ids(found: dict[str, Any]) -> list[str]:
        return [str(task["id"]) for task in found["tasks"]]

    assert ids(await operator.call("GET", "/tasks")) == [theirs, failed["result"], ok]
    assert ids(await operator.call("GET", "/tasks", userId=ana.user_id)) == [failed["result"], ok]
    assert ids(await operator.call("GET", "/tasks", status="FAILURE")) == [failed["result"]]
    assert ids(await operator.call("GET", "/tasks", channelId=first)) == [
        theirs,
        failed["result"],
        ok,
    ]
    assert ids(await operator.call("GET", "/tasks", channelId=first + 1)) == []
    assert ids(await operator.call("GET", "/tasks", since=middle.isoformat())) == [theirs]
    assert ids(await operator.call("GET", "/tasks", until=middle.isoformat())) == [
        failed["result"],
        ok,
    ]
    assert ids(await operator.call("GET", "/tasks", before=theirs, limit=1)) == [failed["result"]]
    one = await operator.call("GET", "/tasks", keyId=await ana.key_id(), status="SUCCESS")
    task = one["tasks"][0]
    assert (task["userId"], task["channelId"], task["priceUnits"]) == (
        ana.user_id,
        first,
        IMAGINE_UNITS,
    )
    assert task["upstreamTaskId"]
    assert "notifyHook" not in task
    await operator.refused("GET", "/tasks", status="DONE")
    await operator.refused("GET", "/tasks", since="yesterday")

    rows = (await operator.call("GET", "/ledger", userId=ana.user_id))["entries"]
    kinds = [row["kind"] for row in rows]
    assert sorted(kinds) == sorted(["TOPUP", "HOLD", "SETTLE", "HOLD", "SETTLE", "REFUND"])
    assert sum(row["amountUnits"] for row in rows) == await ana.balance()
    refunds = (await operator.call("GET", "/ledger", userId=ana.user_id, kind="REFUND"))["entries"]
    assert [(r["taskId"], r["amountUnits"]) for r in refunds] == [
        (int(failed["result"]), IMAGINE_UNITS)
    ]
    later = (await operator.call("GET", "/ledger", since=middle.isoformat()))["entries"]
    assert {row["userId"] for row in later} == {bo.user_id}
    everything = [row["id"] for row in (await operator.call("GET", "/ledger"))["entries"]]
    paged = (await operator.call("GET", "/ledger", before=everything[1], limit=2))["entries"]
    assert [row["id"] for row in paged] == everything[2:4]
    await operator.refused("GET", "/ledger", kind="GIFT")


async def test_the_openapi_document_describes_the_admin_routes_and_their_bodies(
    gateway_factory: StartGateway,
) -> None:
    gateway = await gateway_factory()
    document = (await gateway.http.get("/schema/openapi.json")).json()
    paths = document["paths"]
    for path, method in [
        ("/api/admin/users", "post"),
        ("/api/admin/users/{user_id}/keys", "post"),
        ("/api/admin/keys/{key_id}/revoke", "post"),
        ("/api/admin/channels/{channel_id}", "patch"),
        ("/api/admin/tasks", "get"),
        ("/api/admin/ledger", "get"),
        ("/mj/submit/imagine", "post"),
    ]:
        assert method in paths[path], (path, sorted(paths[path]))
    body = paths["/api/admin/channels"]["post"]["requestBody"]["content"]["application/json"]
    schema = document["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert {"name", "baseUrl", "secret", "weight", "maxInFlight"} <= set(schema["properties"])
    parameters = {p["name"] for p in paths["/api/admin/tasks"]["get"]["parameters"]}
    assert {"userId", "status", "channelId", "since", "until", "before", "limit"} <= parameters


async def test_the_openapi_document_is_json_only_and_describes_every_answer(
    gateway_factory: StartGateway,
) -> None:
    gateway = await gateway_factory()
    for page in ("/schema/swagger", "/schema/redoc", "/schema/elements", "/schema/rapidoc"):
        assert (await gateway.http.get(page)).status_code == 404
    root = await gateway.http.get("/schema")
    document = (await gateway.http.get("/schema/openapi.json")).json()
    assert root.json() == document
    schemas = document["components"]["schemas"]
    text = json.dumps(document)
    assert "status_code" not in text  # Litestar's own error shape is documented nowhere
    assert "cdn" not in text.lower()

    imagine = document["paths"]["/mj-relax/mj/submit/imagine"]["post"]
    body = imagine["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert {"prompt", "base64Array", "accountFilter"} <= set(
        schemas[body.rsplit("/", 1)[1]]["properties"]
    )
    assert schemas["ImagineBody"]["required"] == ["prompt"]
    answer = imagine["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert answer.endswith("/SubmitAnswer")
    fetch = document["paths"]["/mj/task/{task_id}/fetch"]["get"]["responses"]
    assert fetch["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/TaskObject")
    assert set(schemas["TaskObject"]["required"]) >= {"id", "status", "imageUrl", "buttons"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status == "default" or int(status) >= 400:
                    error = response["content"]["application/json"]["schema"]["$ref"]
                    assert error.endswith("/ErrorAnswer"), (path, method, status)
    assert set(schemas["ErrorAnswer"]["required"]) == {"code", "description", "result"}


async def test_no_secret_reaches_an_answer_or_a_log_line(
    gateway_process_factory: StartGatewayProcess,
    simulator_factory: StartSimulator,
    db_pool: asyncpg.Pool,
) -> None:
    simulator = await simulator_factory()
    process = await gateway_process_factory(
        GATEWAY_LOG__LEVEL="DEBUG",
        GATEWAY_ADMIN__TOKENS=json.dumps([ADMIN_TOKEN]),
        GATEWAY_UPSTREAM__CALLBACK_BASE_URL="http://127.0.0.1:1",
    )
    async with httpx.AsyncClient(base_url=process.base_url, timeout=30) as http:
        operator = Operator(http)
        channel = await operator.call(
            "POST", "/channels",
            {"name": "sim", "baseUrl": simulator.base_url, "secret": SIMULATOR_SECRET},
            expect=201,
        )  # fmt: skip
        user = await operator.call("POST", "/users", {"name": "eve", "balanceUnits": 10**6}, 201)
        issued = await http.post(f"/api/admin/users/{user['id']}/keys", json={}, headers=ADMIN)
        key = issued.json()["key"]
        client = {"Authorization": f"Bearer {key}"}
        task = await http.post("/mj/submit/imagine", json={"prompt": "a bee"}, headers=client)
        assert task.json()["code"] == 1, task.text
        for _ in range(500):  # synced from the upstream, which echoes the callback URL it got
            fetched = await http.get(f"/mj/task/{task.json()['result']}/fetch", headers=client)
            if fetched.json()["status"] == "SUCCESS":
                break
            await asyncio.sleep(0.02)
        assert fetched.json()["status"] == "SUCCESS", fetched.text
        for path in ("/users", "/keys", "/channels", f"/channels/{channel['id']}", "/tasks",
                     "/ledger", "/usage"):  # fmt: skip
            await operator.call("GET", path)
        await http.get("/api/admin/users", headers={"Authorization": "Bearer not-the-token"})
        await http.get("/mj/task/list", headers={"Authorization": "Bearer sk-not-a-key"})
        await operator.call("POST", f"/keys/{issued.json()['keyId']}/revoke")
    await process.stop()

    log = process.log_path.read_text()
    assert '"path": "/api/admin/channels"' in log, log[-2000:]  # requests are logged, at DEBUG
    callback_token = await db_pool.fetchval("SELECT callback_token FROM channels")
    for secret in (
        SIMULATOR_SECRET,
        ADMIN_TOKEN,
        key,
        "not-the-token",
        "sk-not-a-key",
        callback_token,
    ):
        assert secret not in log, secret
    assert any('"notifyHook"' not in a and '"upstreamTaskId"' in a for a in operator.answers)
    for answer in operator.answers:
        assert SIMULATOR_SECRET not in answer
        assert key not in answer
        assert ADMIN_TOKEN not in answer
        assert callback_token not in answer


async def test_rate_limits_of_a_user_and_of_a_key_are_set_and_lifted(
    gateway_factory: StartGateway,
) -> None:
    gateway, operator = await _setup(gateway_factory, auth_cache_ttl_s=0)
    user = await operator.call("POST", "/users", {"name": "fay"}, expect=201)
    issued = await operator.call("POST", f"/users/{user['id']}/keys", {}, expect=201)
    client = _client(gateway, user["id"], issued["key"])

    limited = await operator.call(
        "PUT", f"/users/{user['id']}/limits", {"requestsPerMinute": 2, "maxOpenTasks": 7}
    )
    assert (limited["requestsPerMinute"], limited["maxOpenTasks"]) == (2, 7)
    statuses = [(await client.get("/mj/task/list")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    await operator.call("PUT", f"/users/{user['id']}/limits", {})
    assert (await client.get("/mj/task/list")).status_code == 200

    keyed = await operator.call(
        "PUT", f"/keys/{issued['keyId']}/rate-limits", {"requestsPerMinute": 1}
    )
    assert keyed == {"keyId": issued["keyId"], "requestsPerMinute": 1, "maxOpenTasks": None}
    (listed,) = (await operator.call("GET", "/keys", userId=user["id"]))["keys"]
    assert (listed["requestsPerMinute"], listed["maxOpenTasks"]) == (1, None)
    first, second = [await client.get("/mj/task/list") for _ in range(2)]
    assert (first.status_code, second.status_code) == (200, 429)
    assert second.headers["X-RateLimit-Limit"] == "1"

    await operator.refused("PUT", f"/users/{user['id']}/limits", {"requestsPerMinute": 0})
    await operator.refused("PUT", "/users/999999/limits", {}, expect=404)
    await operator.refused("PUT", "/keys/999999/rate-limits", {}, expect=404)


async def test_a_channel_whose_secret_does_not_open_is_left_out_alone(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, operator = await _setup(gateway_factory)
    good = await gateway.add_channel(await simulator_factory(), name="good")
    stray = await gateway.add_channel(await simulator_factory(), name="stray", priority=5)
    foreign = SecretBox(b"a key this gateway does not have").seal(SIMULATOR_SECRET, SECRET_PURPOSE)
    await gateway.services.pool.execute(
        "UPDATE channels SET secret_sealed = $2 WHERE id = $1", stray, foreign
    )
    gateway.services.channels.invalidate()
    client = await gateway.client_with_key()

    for _ in range(3):
        answer = await client.post("/mj/submit/imagine", {"prompt": "a pear"})
        assert answer.json()["code"] == 1, answer.text
    channels = await gateway.services.pool.fetch("SELECT DISTINCT channel_id FROM tasks")
    assert [row["channel_id"] for row in channels] == [good]
    tested = await operator.call("POST", f"/channels/{stray}/test")
    assert tested["ok"] is False
    assert "does not open" in tested["detail"]


async def test_a_secret_that_cannot_be_sent_fails_over_and_charges_nothing(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, _ = await _setup(gateway_factory)
    channel = await gateway.add_channel(await simulator_factory())
    await gateway.services.pool.execute(  # kept in plaintext by a version before sealing
        "UPDATE channels SET secret_sealed = NULL, secret = $2 WHERE id = $1", channel, "a\nb"
    )
    gateway.services.channels.invalidate()
    client = await gateway.client_with_key(balance_units=IMAGINE_UNITS)

    answer = await client.post("/mj/submit/imagine", {"prompt": "a plum"})

    assert (answer.status_code, answer.json()["code"]) == (502, 23), answer.text
    assert await client.balance() == IMAGINE_UNITS


async def test_methods_are_named_in_allow_and_bad_networks_in_our_own_words(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, operator = await _setup(gateway_factory)
    channel_id = await gateway.add_channel(await simulator_factory())
    path = f"/api/admin/channels/{channel_id}"
    options = await gateway.http.options(path, headers=ADMIN)
    assert options.status_code == 204
    assert set(options.headers["allow"].split(", ")) == {"GET", "OPTIONS", "PATCH"}
    for method, target, allowed in (
        ("DELETE", path, {"GET", "OPTIONS", "PATCH"}),
        ("PUT", "/api/admin/channels", {"GET", "OPTIONS", "POST"}),
        ("GET", "/mj/submit/imagine", {"OPTIONS", "POST"}),
    ):
        answer = await gateway.http.request(method, target, headers=ADMIN)
        assert answer.status_code == 405, answer.text
        assert set(answer.headers["allow"].split(", ")) == allowed
        assert answer.json()["code"] == 21

    user = await operator.call("POST", "/users", {"name": "neo"}, expect=201)
    for cidrs in (["10.0.0.1/8"], ["not-a-network"], ["10.0.0.0/33"]):
        description = await operator.refused(
            "POST", f"/users/{user['id']}/keys", {"allowedCidrs": cidrs}
        )
        assert description.startswith("allowedCidrs: "), description
        assert "query argument" not in description
