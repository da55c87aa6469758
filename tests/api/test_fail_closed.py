"""Without its database the gateway fails closed: 503/23, nothing upstream, nothing charged."""

from __future__ import annotations

from gateway.billing.reconciliation import reconcile
from tests.conftest import SIMULATOR_SECRET, StartGateway, StartSimulator
from tests.support import TcpProxy

IMAGINE_UNITS = 100_000
START_UNITS = 1_000_000


async def test_submits_fail_closed_while_the_database_is_unreachable(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, database_url: str
) -> None:
    proxy, through = TcpProxy.to_database(database_url)
    await proxy.start()
    gateway = await gateway_factory(through=through(proxy.port), relay={"auth_cache_ttl_s": 300})
    simulator = await simulator_factory()
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)
    first = await client.post("/mj/submit/imagine", {"prompt": "a lynx"})
    assert first.json()["code"] == 1, first.text

    await proxy.cut()
    refused = await client.post("/mj/submit/imagine", {"prompt": "a lynx, again"})
    fetched = await client.get(f"/mj/task/{first.json()['result']}/fetch")

    assert (refused.status_code, refused.json()["code"]) == (503, 23)
    assert refused.json()["result"] is None
    assert (fetched.status_code, fetched.json()["code"]) == (503, 23)
    stats = await gateway.http.get(
        f"{simulator.base_url}/sim/stats", headers={"mj-api-secret": SIMULATOR_SECRET}
    )
    assert stats.json()["requests"]["submit/imagine"] == 1

    await proxy.start()
    after = await client.post("/mj/submit/imagine", {"prompt": "a lynx, later"})
    assert after.json()["code"] == 1, after.text
    assert await client.balance() == START_UNITS - 2 * IMAGINE_UNITS
    report = await reconcile(gateway.services.pool, hold_grace_s=0)
    assert report.ok, report.summary()
    await proxy.cut()
