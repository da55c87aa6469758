"""The operator's console pages under ``/console/admin``, signed in as a browser is, against a
running gateway and the simulator: what each form changes in the database, and what no page
shows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx

from gateway import admin
from gateway.console import operator
from gateway.console.web import COOKIE
from gateway.simulator import RunningSimulator
from tests.api.console_helpers import browser, console_user, csrf_of, sign_in
from tests.api.helpers import imagine_done, start
from tests.conftest import SIMULATOR_SECRET, Gateway, StartGateway

ADMIN = "/console/admin"


class Console:
    """A signed-in browser that keeps every page it was shown, to look for secrets in."""

    def __init__(self, http: httpx.AsyncClient, csrf: str) -> None:
        self.http = http
        self.csrf = csrf
        self.pages: list[str] = []

    @classmethod
    async def open(cls, http: httpx.AsyncClient, name: str) -> Console:
        return cls(http, await sign_in(http, name))

    async def get(self, path: str, expect: int = 200, **params: Any) -> str:
        answer = await self.http.get(path, params=params or None)
        self.pages.append(answer.text)
        assert answer.status_code == expect, (path, answer.status_code, answer.text)
        if path.startswith(ADMIN):
            _assert_labelled(answer.text)
        return answer.text

    async def post(
        self, path: str, data: dict[str, Any] | None = None, expect: int = 303, csrf: bool = True
    ) -> httpx.Response:
        form = {**({"csrf": self.csrf} if csrf else {}), **(data or {})}
        answer = await self.http.post(path, data=form)
        self.pages.append(answer.text)
        assert answer.status_code == expect, (path, answer.status_code, answer.text)
        return answer

    async def send(self, path: str, data: dict[str, Any] | None = None) -> str:
        """Send a form and follow it to the page it goes to: that page."""
        answer = await self.post(path, data)
        return await self.get(answer.headers["location"])

    def assert_never_shown(self, *secrets: str) -> None:
        for page in self.pages:
            for secret in secrets:
                assert secret not in page, secret


async def _operator(gateway: Gateway, name: str = "root") -> Console:
    await console_user(gateway, name, operator=True)
    return await Console.open(gateway.http, name)


_FIELD = re.compile(r"<(input|select|textarea)\b([^>]*)>")


def _assert_labelled(page: str) -> None:
    """Every field a person fills in has a label that names it (``<label for=...>``)."""
    labelled = set(re.findall(r'<label for="([^"]+)"', page))
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "an id used twice"
    for tag, attributes in _FIELD.findall(page):
        if 'type="hidden"' in attributes:
            continue
        found = re.search(r'\bid="([^"]+)"', attributes)
        assert found, f"<{tag}{attributes}> has no id"
        assert found.group(1) in labelled, f"<{tag}{attributes}> has no label"


def _said(page: str) -> str:
    found = re.search(r'<p class="said (?:ok|error)"[^>]*>(.*?)</p>', page, re.S)
    assert found, "no message on the page"
    return found.group(1)


async def test_a_customer_gets_403_on_every_operator_route(gateway_factory: StartGateway) -> None:
    gateway = await gateway_factory()
    root = await _operator(gateway)
    customer_id = await console_user(gateway, "carl")
    async with browser(gateway) as http:
        carl = await Console.open(http, "carl")
        await carl.get("/console")
        tried = 0
        for handler in operator.ROUTES:
            for path in handler.paths:
                url = (ADMIN + re.sub(r"\{\w+:int\}", str(customer_id), path)).rstrip("/")
                for method in handler.http_methods - {"HEAD", "OPTIONS"}:
                    data = {"csrf": carl.csrf} if method == "POST" else None
                    answer = await http.request(method, url, data=data)
                    assert answer.status_code == 403, (method, url, answer.text)
                    assert "this page is for operators" in answer.text
                    tried += 1
        assert tried >= len(operator.ROUTES)
        assert ADMIN not in (await carl.get("/console")).split("<main", 1)[0]

    # Not signed in: to the sign-in form.
    async with browser(gateway) as http:
        answer = await http.get(f"{ADMIN}/users")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/login?next=")

    # An operator's form without its CSRF token (or with another) is refused and does nothing.
    await root.post(f"{ADMIN}/users", {"name": "mallory"}, expect=403, csrf=False)
    await root.post(f"{ADMIN}/users", {"name": "mallory", "csrf": "x" * 32}, expect=403, csrf=False)
    await root.post(f"{ADMIN}/users/{customer_id}/disable", expect=403, csrf=False)
    pool = gateway.services.pool
    assert await pool.fetchval("SELECT count(*) FROM users WHERE name = 'mallory'") == 0
    assert await pool.fetchval("SELECT enabled FROM users WHERE id = $1", customer_id) is True


async def test_users_money_keys_and_invitations(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, alice = await start(gateway_factory, simulator)
    pool = gateway.services.pool
    root = await _operator(gateway)

    # Create a user from the page: their page is next.
    answer = await root.post(
        f"{ADMIN}/users", {"name": "bob", "balance": "500", "group": "default", "operator": "on"}
    )
    bob = await pool.fetchrow("SELECT id, balance_units, operator FROM users WHERE name = 'bob'")
    assert (bob["balance_units"], bob["operator"]) == (500, True)
    assert answer.headers["location"] == f"{ADMIN}/users/{bob['id']}"
    assert "user bob created" in _said(await root.get(answer.headers["location"]))
    listing = await root.get(f"{ADMIN}/users", q="bo")
    assert f'href="{ADMIN}/users/{bob["id"]}"' in listing
    assert f'href="{ADMIN}/users/{alice.user_id}"' not in listing
    refused = await root.send(f"{ADMIN}/users", {"name": "bob"})
    assert "user bob exists" in _said(refused)

    # A top-up with a reference moves money once, however often it is sent.
    page_of_alice = f"{ADMIN}/users/{alice.user_id}"
    before = await alice.balance()
    topup = {"units": "1000", "reason": "invoice 7", "reference": "pay-7"}
    assert "applied: balance" in _said(await root.send(f"{page_of_alice}/topup", topup))
    assert "not applied" in _said(await root.send(f"{page_of_alice}/topup", topup))
    assert await alice.balance() == before + 1000
    adjust = {"units": "-300", "reason": "goodwill undone", "reference": "ticket-3"}
    await root.send(f"{page_of_alice}/adjust", adjust)
    await root.send(f"{page_of_alice}/adjust", adjust)
    assert await alice.balance() == before + 700
    no_reference = await root.send(f"{page_of_alice}/topup", {"units": "5", "reason": "r"})
    assert "Reference is required" in _said(no_reference)
    assert await alice.balance() == before + 700

    # Disabled, the user's key is refused at once; enabled, it works again.
    assert (await alice.get("/mj/task/list")).status_code == 200
    assert "disabled" in _said(await root.send(f"{page_of_alice}/disable"))
    assert (await alice.get("/mj/task/list")).status_code == 403
    await root.send(f"{page_of_alice}/enable")
    assert (await alice.get("/mj/task/list")).status_code == 200
    myself = await pool.fetchval("SELECT id FROM users WHERE name = 'root'")
    assert "cannot disable yourself" in _said(await root.send(f"{ADMIN}/users/{myself}/disable"))

    # Group, rate limits, operator mark.
    await root.send(f"{page_of_alice}/group", {"group": "default"})
    await root.send(f"{page_of_alice}/limits", {"rpm": "60", "open": ""})
    limits = await pool.fetchrow(
        "SELECT requests_per_minute, max_open_tasks FROM users WHERE id = $1", alice.user_id
    )
    assert tuple(limits) == (60, None)
    await root.send(f"{ADMIN}/users/{bob['id']}/operator", {})
    assert await pool.fetchval("SELECT operator FROM users WHERE id = $1", bob["id"]) is False

    # The user's key: shown by its hint, limited, rate limited, revoked.
    key_id = await alice.key_id()
    hint = (await admin.key(pool, key_id)).hint
    assert hint in await root.get(page_of_alice)
    await root.send(f"{ADMIN}/keys/{key_id}/limit", {"units": "5000", "reason": "trial"})
    await root.send(f"{ADMIN}/keys/{key_id}/rate-limits", {"rpm": "10", "open": "2"})
    key = await admin.key(pool, key_id)
    assert (key.limit_units, key.requests_per_minute, key.max_open_tasks) == (5000, 10, 2)
    assert "revoked" in _said(await root.send(f"{ADMIN}/keys/{key_id}/revoke"))
    assert (await alice.get("/mj/task/list")).status_code == 403
    assert hint not in await root.get(page_of_alice)
    assert hint in await root.get(page_of_alice, revoked="true")
    await root.post(f"{ADMIN}/keys/999999/revoke", expect=404)

    # An invitation link, shown once on the page, works once.
    shown = (await root.post(f"{ADMIN}/users/{bob['id']}/invitation", expect=200)).text
    link = re.search(r'<code id="invitation"[^>]*>([^<]+)</code>', shown)
    assert link
    url = link.group(1)
    assert url.startswith(f"{gateway.base_url}/console/invite/")
    assert url.split("/")[-1] not in await root.get(f"{ADMIN}/users/{bob['id']}")
    async with browser(gateway) as http:
        form = await http.get(url)
        assert form.status_code == 200
        taken = await http.post(
            url,
            data={
                "csrf": csrf_of(form.text),
                "password": "bobs-new-password",
                "confirmation": "bobs-new-password",
            },
        )
        assert taken.status_code == 303, taken.text
        assert http.cookies.get(COOKIE)
        assert "bob" in (await http.get("/console/account")).text
        assert (await http.get(url)).status_code == 404

    root.assert_never_shown(alice.key, SIMULATOR_SECRET)


async def test_channels_are_added_disabled_enabled_and_tested(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway = await gateway_factory()
    pool = gateway.services.pool
    root = await _operator(gateway)
    channel = {
        "name": "sim-2",
        "base_url": simulator.base_url,
        "secret": SIMULATOR_SECRET,
        "weight": "3",
        "priority": "1",
        "modes": ["FAST", "RELAX"],
        "bot_types": ["MID_JOURNEY"],
        "actions": "",
        "max_in_flight": "7",
        "flavour": "plus",
    }
    answer = await root.post(f"{ADMIN}/channels", channel)
    found = await admin.channel_settings(pool, await admin.channel_id_by_name(pool, "sim-2"))
    assert answer.headers["location"] == f"{ADMIN}/channels/{found.id}"
    assert (found.weight, found.priority, found.modes, found.bot_types) == (
        3, 1, ["FAST", "RELAX"], ["MID_JOURNEY"],
    )  # fmt: skip
    assert (found.max_in_flight, found.actions, found.has_secret) == (7, None, True)
    page_url = f"{ADMIN}/channels/{found.id}"
    assert "channel sim-2 added" in _said(await root.get(page_url))
    again = await root.send(f"{ADMIN}/channels", channel)
    assert "channel sim-2 exists" in _said(again)

    listing = await root.get(f"{ADMIN}/channels")
    assert re.search(r'<span class="state up">up</span>', listing)
    assert "0 / 7" in listing
    assert "disabled:" in _said(await root.send(f"{page_url}/disable"))
    assert '<span class="state disabled">disabled</span>' in await root.get(f"{ADMIN}/channels")
    assert '<span class="state disabled">disabled</span>' in await root.get(ADMIN)
    await root.send(f"{page_url}/enable")
    assert '<span class="state up">up</span>' in await root.get(page_url)
    assert "test ok" in _said(await root.send(f"{page_url}/test"))

    # An edit with the secret left empty keeps it; the remove box removes it.
    edit = {**channel, "secret": "", "weight": "5", "max_in_flight": "", "actions": "mj_imagine"}
    assert "saved" in _said(await root.send(page_url, edit))
    edited = await admin.channel_settings(pool, found.id)
    assert (edited.weight, edited.max_in_flight, edited.actions) == (5, None, ["mj_imagine"])
    assert edited.has_secret
    assert "test ok" in _said(await root.send(f"{page_url}/test"))
    bad = await root.send(page_url, {**edit, "base_url": "ftp://nowhere"})
    assert "baseUrl must be" in _said(bad)
    await root.send(page_url, {**edit, "remove_secret": "on"})
    assert not (await admin.channel_settings(pool, found.id)).has_secret
    assert "test failed" in _said(await root.send(f"{page_url}/test"))
    await root.get(f"{ADMIN}/channels/999999", expect=404)

    root.assert_never_shown(SIMULATOR_SECRET)


async def test_prices_searches_overview_and_reconciliation(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, alice = await start(gateway_factory, simulator)
    pool = gateway.services.pool
    tasks = [await imagine_done(alice, prompt) for prompt in ("a red fox", "a blue heron")]
    root = await _operator(gateway)

    # Prices, mode ratios and groups, read back from the price book.
    await root.send(f"{ADMIN}/prices", {"action": "mj_imagine", "units": "123"})
    await root.send(f"{ADMIN}/prices", {"action": "mj_brand_new", "units": "7"})
    await root.send(f"{ADMIN}/prices/modes", {"mode": "RELAX", "ratio_bp": "5000"})
    await root.send(
        f"{ADMIN}/prices/groups", {"name": "vip", "ratio_bp": "8000", "description": "v"}
    )
    refused = await root.send(f"{ADMIN}/prices", {"action": "imagine", "units": "1"})
    assert "a priced action is mj_" in _said(refused)
    book = await admin.price_list(pool)
    assert (book.prices_units["mj_imagine"], book.prices_units["mj_brand_new"]) == (123, 7)
    assert book.mode_ratios_bp["RELAX"] == 5000
    assert ("vip", 8000, "v") in [(g.name, g.ratio_bp, g.description) for g in book.groups]
    prices = await root.get(f"{ADMIN}/prices")
    assert 'value="mj_brand_new"' in prices
    assert "vip" in await root.get(f"{ADMIN}/users/{alice.user_id}")

    # Task and ledger searches.
    empty = {"key": "", "channel": "", "since": "", "until": ""}  # as the form sends them
    found = await root.get(f"{ADMIN}/tasks", user="alice", status="SUCCESS", **empty)
    for task in tasks:
        assert f"<code>{task['id']}</code>" in found
    assert tasks[0]["id"] not in await root.get(f"{ADMIN}/tasks", status="FAILURE")
    assert "no user nobody" in _said(await root.get(f"{ADMIN}/tasks", user="nobody"))
    older = await root.get(f"{ADMIN}/tasks", user=str(alice.user_id), before=tasks[1]["id"])
    assert tasks[0]["id"] in older
    assert tasks[1]["id"] not in older
    ledger = await root.get(f"{ADMIN}/ledger", user="alice", kind="HOLD", **empty)
    assert ledger.count('<tr class="hold">') == 2
    assert '<tr class="topup">' in await root.get(f"{ADMIN}/ledger", user=str(alice.user_id))
    assert "kind is one of" in _said(await root.get(f"{ADMIN}/ledger", kind="NONSENSE"))
    assert "Key id is a whole number" in _said(await root.get(f"{ADMIN}/tasks", key="x"))
    today = datetime.now(UTC).date().isoformat()
    assert tasks[0]["id"] in await root.get(f"{ADMIN}/tasks", since=today, until=today)
    assert tasks[0]["id"] not in await root.get(f"{ADMIN}/tasks", until="2000-01-01")

    # The overview and reconciliation.
    overview = await root.get(ADMIN)
    assert '<span class="state up">up</span>' in overview
    assert f'href="{ADMIN}/reconciliation"' in overview
    assert "Run reconciliation" in await root.get(f"{ADMIN}/reconciliation")
    report = (await root.post(f"{ADMIN}/reconciliation", expect=200)).text
    assert "No gap: the money adds up." in report
    await pool.execute("UPDATE users SET balance_units = balance_units + 1 WHERE name = 'alice'")
    report = (await root.post(f"{ADMIN}/reconciliation", expect=200)).text
    assert "Gaps found" in report
    assert f'href="{ADMIN}/users/{alice.user_id}"' in report

    root.assert_never_shown(alice.key, SIMULATOR_SECRET)
