"""GET /mj/image/{id}: the gateway's own signed image URLs; the signature is the only credential."""

from __future__ import annotations

import io
import time

import httpx
from aiohttp import web
from PIL import Image

from gateway.simulator import RunningSimulator
from gateway.tasks.images import ImageSigner
from tests.api.helpers import (
    PRICE,
    START_BALANCE,
    assert_error,
    assert_own_image_url,
    start,
    submit,
    succeed,
)
from tests.conftest import Gateway, StartGateway


def _signer(gateway: Gateway) -> ImageSigner:
    secret = gateway.settings.relay.secret_key
    assert secret is not None
    return ImageSigner(
        secret.get_secret_value().encode(),
        gateway.base_url,
        gateway.settings.relay.image_url_ttl_s,
    )


def _with(url: str, **params: str) -> str:
    parsed = httpx.URL(url)
    return str(parsed.copy_with(params=parsed.params.merge(params)))


async def test_image_url_downloads_without_a_key_as_png(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": "a bowl of ripe fruit"})
    task = await succeed(client, task_id)
    assert_own_image_url(gateway, simulator, task)

    before = simulator.engine.requests["attachments"]
    async with httpx.AsyncClient(timeout=10.0) as anonymous:
        response = await anonymous.get(task["imageUrl"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/png")
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    image.load()
    assert image.width > 1
    assert image.height > 1
    assert simulator.engine.requests["attachments"] == before + 1
    assert await client.balance() == START_BALANCE - PRICE["mj_imagine"]


async def test_wrong_signature_is_refused(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": "a bowl of ripe fruit"})
    other_id = await submit(client, "/mj/submit/imagine", {"prompt": "a mountain lake"})
    task = await succeed(client, task_id)
    other = await succeed(client, other_id)
    url = task["imageUrl"]
    sig = httpx.URL(url).params["sig"]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    later_exp = str(int(httpx.URL(url).params["exp"]) + 3600)
    other_url = url.replace(f"/mj/image/{task_id}?", f"/mj/image/{other_id}?")
    assert other_url != other["imageUrl"]

    before = simulator.engine.requests["attachments"]
    non_ascii = (_with(url, sig="é"), _with(url, sig="\u00e9" * 64), _with(url, sig="%ff"))
    for forged in (_with(url, sig=flipped), _with(url, exp=later_exp), other_url, *non_ascii):
        assert_error(await gateway.http.get(forged), 404, 21)
    assert simulator.engine.requests["attachments"] == before
    assert (await gateway.http.get(url)).status_code == 200


async def test_expired_link_is_refused(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": "a bowl of ripe fruit"})
    await succeed(client, task_id)
    signer = _signer(gateway)
    # A link signed with the gateway's own key now works: the signer below is the gateway's.
    fresh = signer.url_for(int(task_id))
    assert (await gateway.http.get(fresh)).status_code == 200
    expired = signer.url_for(int(task_id), now_s=time.time() - 2 * 86_400 - 7200)
    assert int(httpx.URL(expired).params["exp"]) < time.time()

    before = simulator.engine.requests["attachments"]
    assert_error(await gateway.http.get(expired), 404, 21)
    assert simulator.engine.requests["attachments"] == before


class _Target:
    """A loopback HTTP server that counts the requests it gets; ``redirect_to``: answer every
    request with a 302 there instead of an image."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.hits = 0
        self._redirect_to = redirect_to
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> _Target:
        async def handle(_: web.Request) -> web.StreamResponse:
            self.hits += 1
            if self._redirect_to is not None:
                raise web.HTTPFound(self._redirect_to)
            return web.Response(body=b"secret metadata", content_type="text/plain")

        app = web.Application()
        app.router.add_route("*", "/{path:.*}", handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def _image_url_now(gateway: Gateway, task_id: str, url: str) -> str:
    """The task's upstream image URL replaced by ``url`` (what a hostile upstream could send)."""
    await gateway.services.pool.execute(
        "UPDATE tasks SET upstream_image_url = $2 WHERE id = $1", int(task_id), url
    )
    return _signer(gateway).url_for(int(task_id))


async def test_an_image_url_off_the_channel_at_a_private_address_is_never_fetched(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": "a bowl of ripe fruit"})
    await succeed(client, task_id)

    async with _Target() as internal:
        for url in (f"{internal.base_url}/latest/meta-data", "http://169.254.169.254/x"):
            assert_error(
                await gateway.http.get(await _image_url_now(gateway, task_id, url)), 502, 23
            )
        assert internal.hits == 0


async def test_a_redirect_from_the_channel_to_a_private_address_is_not_followed(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": "a bowl of ripe fruit"})
    await succeed(client, task_id)

    async with _Target() as internal, _Target(f"{internal.base_url}/secret") as bouncer:
        channel_id = await gateway.services.pool.fetchval(
            "SELECT channel_id FROM tasks WHERE id = $1", int(task_id)
        )
        await gateway.services.pool.execute(
            "UPDATE channels SET base_url = $2 WHERE id = $1", channel_id, bouncer.base_url
        )
        gateway.services.channels.invalidate()
        signed = await _image_url_now(gateway, task_id, f"{bouncer.base_url}/attachments/x.png")
        assert_error(await gateway.http.get(signed), 502, 23)
        assert (bouncer.hits, internal.hits) == (1, 0)
