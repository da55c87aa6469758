"""Channel flavours (open-source, plus, trueai): new tasks go only to channels that offer their
endpoint, a follow-up its channel cannot take is 400/21 before any charge, and button presses
reach an open-source channel as /submit/change."""

from __future__ import annotations

from gateway import admin
from tests.api.helpers import (
    IMAGINE_PRICE,
    UPSCALE_PRICE,
    assert_error,
    button,
    imagine_done,
    sim_routes,
    start_sim,
    submitted_id,
)
from tests.conftest import Gateway, StartGateway, StartSimulator

START = 100 * IMAGINE_PRICE
SHORTEN_PRICE = 100_000


async def _flavoured(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, flavour: str
) -> tuple[Gateway, object]:
    gateway = await gateway_factory()
    simulator = await start_sim(simulator_factory, flavour=flavour)
    await gateway.add_channel(simulator, name=flavour, flavour=flavour)
    return gateway, simulator


async def test_on_an_open_source_channel_u1_is_sent_as_a_change_and_charged_as_an_upscale(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, simulator = await _flavoured(gateway_factory, simulator_factory, "open-source")
    client = await gateway.client_with_key(balance_units=START)
    grid = await imagine_done(client)

    u1 = {"taskId": grid["id"], "customId": button(grid, "U1")}
    upscale = await client.wait_for(
        submitted_id(await client.post("/mj/submit/action", u1)), {"SUCCESS", "FAILURE"}
    )

    assert (upscale["status"], upscale["action"]) == ("SUCCESS", "UPSCALE"), upscale
    routes = await sim_routes(gateway.http, simulator)  # type: ignore[arg-type]
    assert routes.get("submit/change") == 1
    assert "submit/action" not in routes
    assert await client.balance() == START - IMAGINE_PRICE - UPSCALE_PRICE

    zoom = {"taskId": upscale["id"], "customId": button(upscale, "Zoom Out 2x")}
    assert (
        "open-source"
        in assert_error(await client.post("/mj/submit/action", zoom), 400, 21)["description"]
    )
    seed = await client.get(f"/mj/task/{grid['id']}/image-seed")
    assert "image seeds" in assert_error(seed, 400, 21)["description"]
    assert await client.balance() == START - IMAGINE_PRICE - UPSCALE_PRICE


async def test_shorten_goes_to_a_channel_that_offers_it_and_is_refused_where_none_does(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, open_source = await _flavoured(gateway_factory, simulator_factory, "open-source")
    client = await gateway.client_with_key(balance_units=START)

    refused = await client.post("/mj/submit/shorten", {"prompt": "a long prompt about a fox"})
    assert "shorten" in assert_error(refused, 400, 21)["description"]
    assert await client.balance() == START
    assert await gateway.services.pool.fetchval("SELECT count(*) FROM holds") == 0

    plus = await start_sim(simulator_factory)
    await gateway.add_channel(plus, name="plus", priority=-5)
    submitted_id(await client.post("/mj/submit/shorten", {"prompt": "a long prompt about a fox"}))
    assert (await sim_routes(gateway.http, plus)).get("submit/shorten") == 1
    assert "submit/shorten" not in await sim_routes(gateway.http, open_source)  # type: ignore[arg-type]
    assert await client.balance() == START - SHORTEN_PRICE


async def test_a_change_pinned_to_a_trueai_channel_is_refused_before_any_charge(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, simulator = await _flavoured(gateway_factory, simulator_factory, "trueai")
    client = await gateway.client_with_key(balance_units=START)
    grid = await imagine_done(client)

    change = {"taskId": grid["id"], "action": "UPSCALE", "index": 1}
    assert (
        "trueai"
        in assert_error(await client.post("/mj/submit/change", change), 400, 21)["description"]
    )
    assert await client.balance() == START - IMAGINE_PRICE
    u1 = {"taskId": grid["id"], "customId": button(grid, "U1")}
    submitted_id(await client.post("/mj/submit/action", u1))  # the same through its own route
    assert "submit/change" not in await sim_routes(gateway.http, simulator)  # type: ignore[arg-type]


async def test_the_probe_checks_the_flavour_a_channel_claims(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    simulator = await start_sim(simulator_factory, flavour="open-source")
    claims_plus = await gateway.add_channel(simulator, name="claims-plus")
    honest = await gateway.add_channel(simulator, name="honest", flavour="open-source")
    pool, box, upstream = gateway.services.pool, gateway.services.box, gateway.services.upstream

    wrong = await admin.test_channel(pool, box, upstream, claims_plus)
    right = await admin.test_channel(pool, box, upstream, honest)

    assert not wrong.ok
    assert "not the plus" in wrong.detail
    assert right.ok, right.detail


async def test_a_channels_flavour_is_set_and_shown_by_the_admin_api(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    token = "admin-token-of-the-flavour-test"
    gateway = await gateway_factory(admin={"tokens": [token]})
    headers = {"Authorization": f"Bearer {token}"}
    simulator = await start_sim(simulator_factory)
    created = await gateway.http.post(
        "/api/admin/channels",
        json={"name": "sim", "baseUrl": simulator.base_url, "flavour": "trueai"},
        headers=headers,
    )
    assert (created.status_code, created.json()["flavour"]) == (201, "trueai"), created.text
    path = f"/api/admin/channels/{created.json()['id']}"
    edited = await gateway.http.patch(path, json={"flavour": "open-source"}, headers=headers)
    assert edited.json()["flavour"] == "open-source"
    refused = await gateway.http.patch(path, json={"flavour": "java"}, headers=headers)
    assert_error(refused, 400, 21)
    assert (await gateway.http.get(path, headers=headers)).json()["flavour"] == "open-source"
