"""The web console as a customer and as an attacker sees it: signing in, the cookie and the
headers, CSRF, the limit on wrong passwords, keys made and used, a button pressed and charged,
and that no customer ever reaches another's task, key or ledger."""

from __future__ import annotations

import asyncio
import html
import re

import asyncpg
import httpx

from gateway import admin
from gateway.console import accounts
from tests.api.console_helpers import PASSWORD, browser, console_user, csrf_of, sign_in
from tests.api.helpers import PRICE, RED, start, start_sim, submit
from tests.conftest import SIMULATOR_SECRET, Client, StartGateway, StartSimulator
from tests.processes import StartGatewayProcess


async def _sign_in_status(http: httpx.AsyncClient, name: str, password: str) -> int:
    """Try the sign-in form: the status of its answer."""
    form = await http.get("/console/login")
    answer = await http.post(
        "/console/login", data={"name": name, "password": password, "csrf": csrf_of(form.text)}
    )
    return answer.status_code


async def imagine(client: Client) -> str:
    return await submit(client, "/mj/submit/imagine", {"prompt": "a lighthouse"})


async def test_a_session_cookie_is_http_only_lax_and_pages_allow_no_inline_script(
    gateway_factory: StartGateway,
) -> None:
    gateway = await gateway_factory()
    await console_user(gateway, "carol")
    async with browser(gateway) as http:
        form = await http.get("/console/login")
        assert form.status_code == 200
        token = csrf_of(form.text)
        answer = await http.post(
            "/console/login",
            data={"name": "carol", "password": PASSWORD, "csrf": token, "next": "/console"},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console"
        session = next(c for c in answer.headers.get_list("set-cookie") if "gw_console=" in c)
        assert "HttpOnly" in session
        assert "SameSite=lax" in session
        assert "Path=/console" in session
        assert "Secure" not in session  # plain HTTP here
        home = await http.get("/console")
        assert home.status_code == 200
        assert "carol" in home.text
        policy = home.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert home.headers["x-frame-options"] == "DENY"
        assert home.headers["cache-control"] == "no-store"
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", home.text, re.S)
        assert scripts
        assert all('src="' in attrs and not body.strip() for attrs, body in scripts)
        assert not re.search(r"\son[a-z]+=", home.text)  # no inline event handlers either

    async with browser(gateway) as http:  # behind a TLS proxy: Secure
        headers = {"X-Forwarded-Proto": "https"}
        form = await http.get("/console/login", headers=headers)
        login_cookie = form.headers["set-cookie"]
        assert "Secure" in login_cookie
        answer = await http.post(
            "/console/login",
            data={"name": "carol", "password": PASSWORD, "csrf": csrf_of(form.text)},
            # httpx keeps Secure cookies for https; the browser behind the proxy sends it back
            headers={**headers, "Cookie": login_cookie.split(";")[0]},
        )
        session = next(c for c in answer.headers.get_list("set-cookie") if "gw_console=" in c)
        assert "Secure" in session


async def test_the_sixth_wrong_password_in_a_minute_is_refused_without_checking(
    gateway_factory: StartGateway,
) -> None:
    gateway = await gateway_factory()
    await console_user(gateway, "dave")
    async with browser(gateway) as http:
        for _ in range(5):
            assert await _sign_in_status(http, "dave", "not-the-password") == 401
        # The right password now: refused all the same, unchecked, until the minute is over.
        assert await _sign_in_status(http, "dave", PASSWORD) == 429
        assert (await http.get("/console")).status_code == 303
    # From the same address, another account is refused too (the address's own limit).
    await console_user(gateway, "erin")
    async with browser(gateway) as http:
        assert await _sign_in_status(http, "erin", PASSWORD) == 429


async def test_forms_without_their_csrf_token_are_refused_and_change_nothing(
    gateway_factory: StartGateway,
) -> None:
    gateway = await gateway_factory()
    user_id = await console_user(gateway, "frank")
    async with browser(gateway) as http:
        token = await sign_in(http, "frank", PASSWORD)
        assert token
        for data in ({"name": "k"}, {"name": "k", "csrf": "forged"}):
            answer = await http.post("/console/keys", data=data)
            assert answer.status_code == 403
        # The right token, in a multipart body: the console reads plain forms only.
        multipart = {"Content-Type": "multipart/form-data; boundary=x"}
        body = f'--x\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{token}\r\n--x--\r\n'
        answer = await http.post("/console/keys", content=body, headers=multipart)
        assert answer.status_code == 403
        assert await admin.list_keys(gateway.services.pool, user_id, True, None, 10) == []
        created = await http.post("/console/keys", data={"name": "k", "csrf": token})
        assert created.status_code == 200
        assert "sk-" in created.text
    async with browser(gateway) as http:  # the sign-in form too: no token, no session
        answer = await http.post("/console/login", data={"name": "frank", "password": PASSWORD})
        assert answer.status_code == 403
        assert "gw_console=" not in answer.headers.get("set-cookie", "")


async def test_a_key_made_in_the_console_is_shown_once_works_and_can_be_narrowed_and_revoked(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await simulator_factory()
    gateway = await gateway_factory()
    await gateway.add_channel(simulator)
    user_id = await console_user(gateway, "grace", balance_units=1_000_000)
    async with browser(gateway) as http:
        token = await sign_in(http, "grace", PASSWORD)
        made = await http.post(
            "/console/keys", data={"name": "bot", "limit": "500000", "csrf": token}
        )
        key = re.search(r'<code id="new-key">(sk-[A-Za-z0-9_-]+)</code>', made.text)
        assert key, made.text
        secret = key.group(1)
        api = {"Authorization": f"Bearer {secret}"}
        answer = await gateway.http.post("/mj/submit/imagine", json={"prompt": "a"}, headers=api)
        assert answer.json()["code"] == 1
        listing = await http.get("/console/keys")
        assert secret not in listing.text  # only its hint from now on
        (listed,) = await admin.list_keys(gateway.services.pool, user_id, False, None, 10)
        assert listed.hint in listing.text
        assert listed.limit_units == 500_000 - PRICE["mj_imagine"]

        narrowed = await http.post(
            f"/console/keys/{listed.id}",
            data={"name": "upscales only", "actions": "mj_upscale", "limit": "", "csrf": token},
        )
        assert narrowed.status_code == 303
        answer = await gateway.http.post("/mj/submit/imagine", json={"prompt": "b"}, headers=api)
        assert answer.status_code == 403  # applied at once, in every process
        key_now = await admin.key(gateway.services.pool, listed.id)
        assert key_now.name == "upscales only"
        assert key_now.allowed_actions == ["mj_upscale"]
        assert key_now.limit_units is None

        revoked = await http.post(f"/console/keys/{listed.id}/revoke", data={"csrf": token})
        assert revoked.status_code == 303
        answer = await gateway.http.get("/mj/task/list", headers=api)
        assert answer.status_code in (401, 403)


async def test_pressing_u1_in_the_console_submits_an_upscale_charged_as_the_api(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await simulator_factory()
    gateway, client = await start(gateway_factory, simulator)
    await accounts.set_password(gateway.services.pool, client.user_id, PASSWORD)
    task_id = await imagine(client)
    grid = await client.wait_for(task_id, {"SUCCESS"})
    u1 = next(b["customId"] for b in grid["buttons"] if b["label"] == "U1")
    before = await client.balance()
    async with browser(gateway) as http:
        token = await sign_in(http, "alice", PASSWORD)
        page = await http.get(f"/console/tasks/{task_id}")
        assert page.status_code == 200
        assert u1 in page.text
        pressed = await http.post(
            f"/console/tasks/{task_id}/action",
            data={"customId": u1, "key": str(await client.key_id()), "csrf": token},
        )
        assert pressed.status_code == 303, pressed.text
        new_id = pressed.headers["location"].rsplit("/", 1)[1]
        assert new_id != task_id
        upscale = await client.wait_for(new_id, {"SUCCESS"})
        assert upscale["action"] == "UPSCALE"
        assert await client.balance() == before - PRICE["mj_upscale"]
        shown = await http.get(pressed.headers["location"])
        assert "submitted" in shown.text
        assert upscale["id"] in shown.text
        card = await http.get(f"/console/tasks/{new_id}/card", headers={"X-Console-Fragment": "1"})
        assert card.status_code == 200
        assert "SUCCESS" in card.text
        assert f"{PRICE['mj_upscale']:,} units" in card.text

        # A button that is not one: refused with the API's words, nothing charged.
        bad = await http.post(
            f"/console/tasks/{task_id}/action",
            data={"customId": "MJ::nothing", "key": str(await client.key_id()), "csrf": token},
        )
        assert bad.headers["location"] == f"/console/tasks/{task_id}"
        assert "customId" in (await http.get(bad.headers["location"])).text
        assert await client.balance() == before - PRICE["mj_upscale"]


async def test_no_customer_reaches_another_customers_tasks_keys_or_ledger(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await simulator_factory()
    gateway, bob = await start(gateway_factory, simulator)  # "alice" is bob's user name here
    await console_user(gateway, "mallory")
    bob_task = await imagine(bob)
    await bob.wait_for(bob_task, {"SUCCESS"})
    bob_key = await bob.key_id()
    async with browser(gateway) as http:
        token = await sign_in(http, "mallory", PASSWORD)
        fragment = {"X-Console-Fragment": "1"}
        for path in (f"/console/tasks/{bob_task}", f"/console/tasks/{bob_task}/card"):
            assert (await http.get(path)).status_code == 404
            assert (await http.get(path, headers=fragment)).status_code == 404
        for path, data in (
            (f"/console/keys/{bob_key}/revoke", {}),
            (f"/console/keys/{bob_key}", {"name": "mine now"}),
            (f"/console/tasks/{bob_task}/action", {"customId": "MJ::JOB::upsample::1::x"}),
            (f"/console/tasks/{bob_task}/modal", {"prompt": "x"}),
        ):
            answer = await http.post(path, data={**data, "key": str(bob_key), "csrf": token})
            assert answer.status_code == 404, path
        assert (await http.get("/console/tasks/99999999999999999999")).status_code == 400
        assert (await bob.get("/mj/task/list")).status_code == 200  # bob's key still works
        assert (await admin.key(gateway.services.pool, bob_key)).name == ""
        pages = [
            (await http.get(p)).text
            for p in ("/console", "/console/tasks", "/console/usage", "/console/keys")
        ]
        pages.append((await http.get("/console/usage.csv")).text)
        for text in pages:
            assert bob_task not in text


async def test_usage_lists_the_accounts_ledger_and_exports_it_as_csv(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await simulator_factory()
    gateway, client = await start(gateway_factory, simulator)
    await accounts.set_password(gateway.services.pool, client.user_id, PASSWORD)
    await admin.credit(
        gateway.services.pool, client.user_id, 7, kind="TOPUP", reason="=cmd|' /C calc'!A0",
        reference="pay-1",
    )  # fmt: skip
    task_id = await imagine(client)
    await client.wait_for(task_id, {"SUCCESS"})
    async with browser(gateway) as http:
        await sign_in(http, "alice", PASSWORD)
        page = await http.get("/console/usage")
        assert task_id in page.text
        assert "TOPUP" in page.text
        only = await http.get("/console/usage", params={"kind": "TOPUP"})
        assert task_id not in only.text
        export = await http.get("/console/usage.csv")
        assert export.headers["content-type"].startswith("text/csv")
        lines = export.text.splitlines()
        assert lines[0] == "id,time,kind,units,key_id,task_id,reason"
        assert any(f",HOLD,-{PRICE['mj_imagine']}," in line for line in lines)
        assert any("'=cmd" in line for line in lines)  # a formula is text in a spreadsheet
        assert len(lines) == 1 + len(
            await admin.ledger(
                gateway.services.pool, admin.LedgerSearch(user_id=client.user_id, limit=500)
            )
        )


async def test_a_new_password_ends_every_other_session_and_a_disabled_user_is_signed_out(
    gateway_factory: StartGateway,
) -> None:
    gateway = await gateway_factory()
    user_id = await console_user(gateway, "heidi")
    async with browser(gateway) as first, browser(gateway) as second:
        token = await sign_in(first, "heidi", PASSWORD)
        await sign_in(second, "heidi", PASSWORD)
        wrong = await first.post(
            "/console/account/password",
            data={"current": "nope", "password": "x" * 12, "confirmation": "x" * 12, "csrf": token},
        )
        assert wrong.status_code == 303
        assert "wrong" in (await first.get("/console/account")).text
        changed = await first.post(
            "/console/account/password",
            data={
                "current": PASSWORD,
                "password": "a brand new one",
                "confirmation": "a brand new one",
                "csrf": token,
            },
        )
        assert changed.status_code == 303
        assert (await first.get("/console/account")).status_code == 200  # a new session
        assert (await second.get("/console/account")).status_code == 303  # signed out
        await admin.set_user_enabled(gateway.services.pool, user_id, False)
        assert (await first.get("/console")).status_code == 303
    async with browser(gateway) as again:
        assert await _sign_in_status(again, "heidi", "a brand new one") == 401


async def test_an_invitation_sets_a_password_once(gateway_factory: StartGateway) -> None:
    gateway = await gateway_factory()
    user_id = await admin.create_user(gateway.services.pool, "ivan")
    token = await accounts.invite(gateway.services.pool, user_id, 3600)
    async with browser(gateway) as http:
        page = await http.get(f"/console/invite/{token}")
        assert page.status_code == 200
        assert "ivan" in page.text
        short = await http.post(
            f"/console/invite/{token}",
            data={"password": "short", "confirmation": "short", "csrf": csrf_of(page.text)},
        )
        assert short.status_code == 400
        taken = await http.post(
            f"/console/invite/{token}",
            data={
                "password": "ivan's own password",
                "confirmation": "ivan's own password",
                "csrf": csrf_of(short.text),
            },
        )
        assert taken.status_code == 303
        assert (await http.get("/console")).status_code == 200
        assert (await http.get(f"/console/invite/{token}")).status_code == 404
    async with browser(gateway) as http:
        assert await sign_in(http, "ivan", "ivan's own password")


async def test_no_page_and_no_log_line_shows_a_secret(
    gateway_process_factory: StartGatewayProcess,
    simulator_factory: StartSimulator,
    db_pool: asyncpg.Pool,
) -> None:
    """An operator adds a channel and a user and invites them; the customer takes the
    invitation, makes a key and uses it; both look at every page, with the gateway logging at
    DEBUG. No page holds a channel secret, a callback token, a hash or a key (past the page
    that made it), and no log line any of those or a password, a session, a CSRF token or an
    invitation."""
    simulator = await simulator_factory()
    process = await gateway_process_factory(GATEWAY_LOG__LEVEL="DEBUG")
    operator_id = await admin.create_user(db_pool, "root")
    await admin.set_operator(db_pool, operator_id, True)
    await accounts.set_password(db_pool, operator_id, PASSWORD)
    pages: list[str] = []
    async with (
        httpx.AsyncClient(base_url=process.base_url, timeout=30) as root,
        httpx.AsyncClient(base_url=process.base_url, timeout=30) as vic,
    ):
        csrf = await sign_in(root, "root")

        async def post(http: httpx.AsyncClient, path: str, **data: str) -> httpx.Response:
            answer = await http.post(path, data={**data, "csrf": csrf})
            assert answer.status_code in (200, 303), answer.text
            if answer.status_code == 303:
                answer = await http.get(answer.headers["location"])
            pages.append(answer.text)
            return answer

        await post(
            root, "/console/admin/channels",
            name="sim", base_url=simulator.base_url, secret=SIMULATOR_SECRET,
        )  # fmt: skip
        made = await post(root, "/console/admin/users", name="vic", balance="1000000")
        user_page = str(made.url.path)
        invited = await post(root, f"{user_page}/invitation")
        invitation = re.search(r"/console/invite/([A-Za-z0-9_-]+)", invited.text)
        assert invitation
        form = await vic.get(f"/console/invite/{invitation.group(1)}")
        customer_password = "vic's password, long"
        taken = await vic.post(
            f"/console/invite/{invitation.group(1)}",
            data={
                "password": customer_password,
                "confirmation": customer_password,
                "csrf": csrf_of(form.text),
            },
        )
        assert taken.status_code == 303
        csrf_vic = csrf_of((await vic.get("/console/account")).text)
        made_key = await vic.post("/console/keys", data={"name": "k", "csrf": csrf_vic})
        found = re.search(r'<code id="new-key">(sk-[A-Za-z0-9_-]+)</code>', made_key.text)
        assert found
        key = found.group(1)
        api = {"Authorization": f"Bearer {key}"}
        task_id = (await vic.post("/mj/submit/imagine", json={"prompt": "x"}, headers=api)).json()[
            "result"
        ]
        for _ in range(500):
            fetched = (await vic.get(f"/mj/task/{task_id}/fetch", headers=api)).json()
            if fetched["status"] == "SUCCESS":
                break
            await asyncio.sleep(0.02)
        for path in (
            "/console", "/console/tasks", f"/console/tasks/{task_id}",
            f"/console/tasks/{task_id}/card", "/console/keys", "/console/usage",
            "/console/usage.csv", "/console/webhooks", "/console/account",
        ):  # fmt: skip
            answer = await vic.get(path)
            assert answer.status_code == 200, path
            pages.append(answer.text)
        for path in (
            "/console/admin", "/console/admin/users", user_page, "/console/admin/channels",
            "/console/admin/channels/1", "/console/admin/prices", "/console/admin/tasks",
            "/console/admin/ledger", "/console/admin/reconciliation",
        ):  # fmt: skip
            answer = await root.get(path)
            assert answer.status_code == 200, path
            pages.append(answer.text)
        pages.append((await post(root, "/console/admin/reconciliation")).text)
        sessions = [str(http.cookies.get("gw_console")) for http in (root, vic)]
    await process.stop()

    callback_token = await db_pool.fetchval("SELECT callback_token FROM channels")
    hashes = await db_pool.fetch("SELECT password_hash FROM users WHERE password_hash IS NOT NULL")
    key_hash = await db_pool.fetchval("SELECT encode(key_hash, 'hex') FROM api_keys")
    webhook_secret = await db_pool.fetchval("SELECT webhook_secret FROM users WHERE name = 'vic'")
    for text in pages:
        for secret in (SIMULATOR_SECRET, callback_token, key, key_hash):
            assert secret not in text, secret
        for row in hashes:
            assert row["password_hash"] not in text
    log = process.log_path.read_text()
    assert '"path": "/console/invite/***/"' in log, log[-2000:]  # requests are logged
    for secret in (
        SIMULATOR_SECRET, callback_token, key, PASSWORD, customer_password, invitation.group(1),
        csrf, csrf_vic, webhook_secret, *sessions,
    ):  # fmt: skip
        assert secret not in log, secret


async def test_a_video_shows_in_the_gallery_by_its_thumbnail_and_plays_on_its_page(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    simulator = await start_sim(simulator_factory, flavour="trueai")
    await gateway.add_channel(simulator, name="trueai", flavour="trueai")
    client = await gateway.client_with_key(balance_units=10_000_000)
    await accounts.set_password(gateway.services.pool, client.user_id, PASSWORD)
    body = {"prompt": "waves", "image": RED, "batchSize": 1}
    video_id = await submit(client, "/mj/submit/video", body)
    video = await client.wait_for(video_id, {"SUCCESS"})
    async with browser(gateway) as http:
        await sign_in(http, "alice", PASSWORD)
        card = await http.get(f"/console/tasks/{video_id}/card")
        thumbnail = re.search(r'<img src="([^"]+)"', card.text)
        assert thumbnail
        assert html.unescape(thumbnail.group(1)) == video["videoUrls"][0]["thumbnail"]
        shown = await http.get(html.unescape(thumbnail.group(1)))
        assert shown.status_code == 200
        assert shown.headers["content-type"].startswith("image/")
        page = await http.get(f"/console/tasks/{video_id}")
        assert "<video" in page.text
        assert html.escape(video["videoUrls"][0]["url"]) in page.text
