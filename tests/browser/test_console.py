"""The web console in a real browser: a customer signs in, makes a key, uses it, watches an
imagine appear and finish in the gallery, presses U1 and sees it charged, and revokes the key;
an operator makes a user, tops it up, adds a channel, disables it and runs reconciliation.

Each test saves a screenshot of the page when it fails (next to the test's temporary files).
With ``GATEWAY_TEST_SCREENSHOTS=<folder>`` the tests also save the README's two pictures there:
the customer's gallery and the operator's channels.

Chromium is Debian's (``apt-get install chromium``), driven by Playwright, which downloads
nothing here; where it is not installed, these tests are skipped.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from gateway import admin
from tests.api.console_helpers import PASSWORD, console_user
from tests.api.helpers import PRICE, start_sim
from tests.conftest import SIMULATOR_SECRET, Gateway, StartGateway, StartSimulator

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium (Debian: chromium)")
SCREENSHOTS = os.environ.get("GATEWAY_TEST_SCREENSHOTS")
WAIT_MS = 15_000


@asynccontextmanager
async def browser_page(tmp_path: Path, name: str, **size: int) -> AsyncIterator[Page]:
    """A page of a fresh browser; a screenshot of it is saved if the test fails inside."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        context = await browser.new_context(
            viewport={"width": size.get("width", 1280), "height": size.get("height", 860)}
        )
        await context.grant_permissions(["clipboard-read", "clipboard-write"])
        page = await context.new_page()
        page.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield page
            assert not errors, errors  # the console's script never throws
        except BaseException:
            shot = tmp_path / f"{name}-failure.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failure: {shot}")
            raise
        finally:
            await browser.close()


async def _sign_in(page: Page, gateway: Gateway, name: str) -> None:
    await page.goto(f"{gateway.base_url}/console")
    await expect(page).to_have_url(re.compile(r"/console/login"))
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {name}")


async def _go(page: Page, link: str) -> None:
    """Follow a link of the main navigation."""
    await page.get_by_role("navigation").get_by_role("link", name=link, exact=True).click()


async def _save(page: Page, name: str) -> None:
    if SCREENSHOTS:
        await asyncio.to_thread(Path(SCREENSHOTS).mkdir, parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=False)


async def test_a_customer_makes_a_key_watches_a_task_finish_presses_u1_and_revokes_the_key(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, tmp_path: Path
) -> None:
    gateway = await gateway_factory()
    await gateway.add_channel(await start_sim(simulator_factory))
    user_id = await console_user(gateway, "alice", balance_units=1_000_000)
    async with browser_page(tmp_path, "customer") as page:
        await _sign_in(page, gateway, "alice")

        await _go(page, "Keys")
        await page.get_by_label("Name", exact=True).fill("my bot")
        await page.get_by_role("button", name="Create key").click()
        key = (await page.locator("#new-key").text_content() or "").strip()
        assert key.startswith("sk-")
        await page.get_by_role("button", name="Copy", exact=True).first.click()
        assert await page.evaluate("navigator.clipboard.readText()") == key

        api = httpx.AsyncClient(
            base_url=gateway.base_url, headers={"Authorization": f"Bearer {key}"}
        )
        async with api:
            await _go(page, "Tasks")
            await expect(page.get_by_text("No task here yet.")).to_be_visible()
            ids = [
                (await api.post("/mj/submit/imagine", json={"prompt": prompt})).json()["result"]
                for prompt in ("a lighthouse at dawn", "a fox in the snow", "a city of glass")
            ]
            task_id = ids[0]
            await page.reload()
            card = page.locator(f"#task-{task_id}")
            await expect(card).to_be_visible()
            # The card refreshes itself until the task is done; no reload.
            await expect(card.locator(".badge")).to_have_text("SUCCESS", timeout=WAIT_MS)
            await expect(card.locator("img")).to_have_js_property("complete", True)
            assert await card.locator("img").evaluate("img => img.naturalWidth") > 0
            await expect(card).to_contain_text(f"{PRICE['mj_imagine']:,} units")
            for other in ids[1:]:
                badge = page.locator(f"#task-{other} .badge")
                await expect(badge).to_have_text("SUCCESS", timeout=WAIT_MS)
            await _save(page, "console-gallery.png")

            await card.locator("a.thumb").click()
            before = await gateway.balance(user_id)
            await page.get_by_role("button", name="U1", exact=True).click()
            await expect(page.locator(".said.ok")).to_contain_text("submitted")
            upscale_id = page.url.rsplit("/", 1)[1]
            assert upscale_id != task_id
            upscale = page.locator(f"#task-{upscale_id}")
            await expect(upscale.locator(".badge")).to_have_text("SUCCESS", timeout=WAIT_MS)
            await expect(upscale).to_contain_text(f"{PRICE['mj_upscale']:,} units")
            assert await gateway.balance(user_id) == before - PRICE["mj_upscale"]
            fetched = await api.get(f"/mj/task/{upscale_id}/fetch")
            assert fetched.json()["action"] == "UPSCALE"

            await _go(page, "Keys")
            assert key not in await page.content()
            page.once("dialog", lambda dialog: dialog.accept())
            await page.locator("li.key summary").first.click()
            await page.get_by_role("button", name="Revoke").click()
            await expect(page.locator(".said.ok")).to_contain_text("revoked")
            assert (await api.get("/mj/task/list")).status_code in (401, 403)


async def test_the_console_reads_well_on_a_phone(
    gateway_factory: StartGateway, tmp_path: Path
) -> None:
    gateway = await gateway_factory()
    await console_user(gateway, "pat", balance_units=5)
    async with browser_page(tmp_path, "phone", width=390, height=844) as page:
        await _sign_in(page, gateway, "pat")
        for path in ("/console", "/console/tasks", "/console/keys", "/console/usage"):
            await page.goto(f"{gateway.base_url}{path}")
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} is wider than the phone by {overflow}px"
        # Every form field has a label the browser knows.
        await page.goto(f"{gateway.base_url}/console/keys")
        unlabelled = await page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(f => !f.hidden && f.labels.length === 0).map(f => f.name)"""
        )
        assert unlabelled == []
        # The keyboard reaches the main links first: the skip link, then the console's own.
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Skip to content"


async def test_an_operator_adds_a_user_tops_it_up_adds_and_disables_a_channel_and_reconciles(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, tmp_path: Path
) -> None:
    gateway = await gateway_factory()
    simulator = await start_sim(simulator_factory)
    await console_user(gateway, "root", operator=True)
    async with browser_page(tmp_path, "operator") as page:
        await _sign_in(page, gateway, "root")
        await _go(page, "Users")
        await page.get_by_label("User name").fill("bob")
        await page.get_by_role("button", name="Create user").click()
        await expect(page.get_by_role("heading", level=1)).to_contain_text("bob")
        topup = page.locator("form", has=page.get_by_role("button", name="Top up"))
        await topup.get_by_label("Units to add").fill("2500")
        await topup.get_by_label("Reason").fill("first payment")
        await topup.get_by_label("Reference", exact=False).fill("invoice-1")
        await topup.get_by_role("button", name="Top up").click()
        await expect(page.locator(".said.ok")).to_be_visible()
        bob = await admin.user_id_by_name(gateway.services.pool, "bob")
        assert await gateway.balance(bob) == 2500

        await _go(page, "Channels")
        add = page.locator("form", has=page.get_by_role("button", name="Add channel"))
        await add.get_by_label("Name (no spaces)").fill("sim-1")
        await add.get_by_label("Base URL of the midjourney-proxy").fill(simulator.base_url)
        await add.get_by_label("Secret (mj-api-secret)").fill(SIMULATOR_SECRET)
        await add.get_by_role("button", name="Add channel").click()
        await expect(page.locator(".said.ok")).to_be_visible()
        await _go(page, "Channels")
        row = page.locator("tr", has_text="sim-1")
        await expect(row.locator(".state")).to_have_text("up")
        await _save(page, "console-channels.png")
        assert SIMULATOR_SECRET not in await page.content()

        await row.get_by_role("link").first.click()
        page.once("dialog", lambda dialog: dialog.accept())
        await page.get_by_role("button", name="Disable", exact=True).click()
        await expect(page.locator(".said.ok")).to_be_visible()
        await _go(page, "Channels")
        await expect(page.locator("tr", has_text="sim-1").locator(".state")).to_have_text(
            "disabled"
        )

        await page.goto(f"{gateway.base_url}/console/admin/reconciliation")
        await page.get_by_role("button", name=re.compile("Run reconciliation")).click()
        await expect(page.locator("main")).to_contain_text(re.compile("no gap", re.I))
