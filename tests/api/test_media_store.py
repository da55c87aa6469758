"""The media store: results copied once, in the background, served by the gateway after the
upstream's links have expired and its task is forgotten; hostile results refused; a copy cut
short finished once; the same through an S3-compatible store."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from moto.server import ThreadedMotoServer
from PIL import Image

from gateway.media.copier import MediaCopier
from gateway.media.keeping import apply_retention
from gateway.media.stores import FileStore, S3Store
from gateway.storage import media as media_store
from tests.api.helpers import (
    IMAGINE_PRICE,
    RED,
    button,
    metric_value,
    scrape,
    start_sim,
    submitted_id,
    upstream_id,
)
from tests.conftest import Client, Gateway, StartGateway, StartSimulator

FAST_COPIES = {"keep": True, "copy_every_s": 0.05, "retry_s": 0.05}
DONE = {"SUCCESS", "FAILURE", "CANCEL"}


async def _copied(gateway: Gateway, task_id: str, within_s: float = 15.0) -> str:
    """Wait for the task's copy job to end; its status."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        status = await gateway.services.pool.fetchval(
            "SELECT status FROM media_copies WHERE task_id = $1", int(task_id)
        )
        if status in ("DONE", "FAILED"):
            return str(status)
        await asyncio.sleep(0.02)
    raise AssertionError(f"task {task_id} was not copied within {within_s}s")


async def _imagine(client: Client, prompt: str = "a lighthouse at dusk") -> dict[str, Any]:
    task_id = submitted_id(await client.post("/mj/submit/imagine", {"prompt": prompt}))
    task = await client.wait_for(task_id, DONE)
    assert task["status"] == "SUCCESS", task
    return task


async def _parts(gateway: Gateway, task_id: str) -> dict[str, media_store.StoredObject]:
    return await media_store.task_objects(gateway.services.pool, int(task_id))


async def test_a_result_outlives_the_upstream_and_costs_one_download(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await start_sim(simulator_factory, attachment_ttl_s=3.0)
    gateway = await gateway_factory(media=FAST_COPIES)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=10 * IMAGINE_PRICE)
    task = await _imagine(client)
    upstream = simulator.engine.store.get(await upstream_id(gateway, task["id"]))
    assert upstream is not None
    assert upstream.image_url is not None
    async with httpx.AsyncClient() as browser:
        original = (await browser.get(upstream.image_url)).content
        assert await _copied(gateway, task["id"]) == "DONE"
        parts = await _parts(gateway, task["id"])
        assert set(parts) == {
            "image",
            "image-thumb",
            *(f"image-{n}" for n in range(1, 5)),
            *(f"image-{n}-thumb" for n in range(1, 5)),
        }
        for _ in range(100):  # the upstream's link expires, as Discord's do...
            if (await browser.get(upstream.image_url)).status_code == 404:
                break
            await asyncio.sleep(0.1)
        assert (await browser.get(upstream.image_url)).status_code == 404
        simulator.engine.store.remove(upstream.id)  # ...and it forgets the task
        downloads = simulator.engine.requests["attachments"]

        fetched = (await client.get(f"/mj/task/{task['id']}/fetch")).json()
        first = await browser.get(fetched["imageUrl"])
        assert first.status_code == 200
        assert first.content == original
        assert first.headers["content-type"] == "image/png"
        assert first.headers["content-length"] == str(len(original))
        assert first.headers["etag"] == f'"{parts["image"].sha256}"'
        assert "immutable" in first.headers["cache-control"]
        assert first.headers["last-modified"].endswith("GMT")
        again = await browser.get(
            fetched["imageUrl"], headers={"If-None-Match": first.headers["etag"]}
        )
        assert (again.status_code, again.content) == (304, b"")
        for _ in range(20):
            assert (await browser.get(fetched["imageUrl"])).content == original

        thumb = await browser.get(fetched["imageUrl"] + "&size=thumb")
        small = Image.open(io.BytesIO(thumb.content))
        assert (small.format, max(small.size) <= 256) == ("WEBP", True)
        grid = Image.open(io.BytesIO(original))
        assert len(fetched["imageUrls"]) == 4
        for number, item in enumerate(fetched["imageUrls"], 1):
            single = Image.open(io.BytesIO((await browser.get(item["url"])).content))
            assert single.size == (grid.width // 2, grid.height // 2)
            left, top = ((number - 1) % 2) * grid.width // 2, ((number - 1) // 2) * grid.height // 2
            assert single.getpixel((5, 5)) == grid.convert("RGB").getpixel((left + 5, top + 5))
            assert (await browser.get(item["thumbnail"])).headers["content-type"] == "image/webp"
    assert simulator.engine.requests["attachments"] == downloads  # none of it went upstream


async def test_videos_are_kept_with_their_thumbnails_and_served_in_ranges(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await start_sim(simulator_factory, flavour="trueai")
    gateway = await gateway_factory(media=FAST_COPIES)
    await gateway.add_channel(simulator, flavour="trueai")
    client = await gateway.client_with_key(balance_units=100 * IMAGINE_PRICE)
    body = {"prompt": "waves", "image": RED, "batchSize": 2}
    video_id = submitted_id(await client.post("/mj/submit/video", body))
    assert (await client.wait_for(video_id, DONE))["status"] == "SUCCESS"
    assert await _copied(gateway, video_id) == "DONE"
    parts = await _parts(gateway, video_id)
    assert {"image", "video-1", "video-2", "video-1-thumb", "video-2-thumb"} <= set(parts)
    assert parts["video-2"].content_type == "video/mp4"
    simulator.engine.store.remove(await upstream_id(gateway, video_id))

    video = (await client.get(f"/mj/task/{video_id}/fetch")).json()
    async with httpx.AsyncClient() as browser:
        whole = await browser.get(video["videoUrls"][1]["url"])
        assert (whole.status_code, whole.headers["content-type"]) == (200, "video/mp4")
        size = len(whole.content)
        assert size == parts["video-2"].size_bytes
        tail = await browser.get(video["videoUrl"], headers={"Range": "bytes=-100"})
        first_video = (await browser.get(video["videoUrl"])).content
        assert tail.status_code == 206
        assert tail.content == first_video[-100:]
        assert (
            tail.headers["content-range"]
            == f"bytes {len(first_video) - 100}-{len(first_video) - 1}/{len(first_video)}"
        )
        beyond = await browser.get(video["videoUrl"], headers={"Range": f"bytes={10**9}-"})
        assert beyond.status_code == 416
        thumb = await browser.get(video["videoUrls"][0]["thumbnail"])
        assert Image.open(io.BytesIO(thumb.content)).format == "WEBP"


class _Junk:
    """A channel's own origin that serves the task API of a simulator behind it, and, under
    ``/junk.png``, text that claims to be a PNG."""

    def __init__(self, behind: str) -> None:
        self._behind = behind
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> _Junk:
        async def junk(_: web.Request) -> web.Response:
            return web.Response(body=b"<html>not a picture</html>", content_type="image/png")

        app = web.Application()
        app.router.add_get("/junk.png", junk)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def test_hostile_results_are_refused_and_keep_streaming(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await start_sim(simulator_factory)
    gateway = await gateway_factory(media={"keep": False, "max_bytes": 2_000})
    channel_id = await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=10 * IMAGINE_PRICE)
    pool = gateway.services.pool
    before = await scrape(gateway)

    too_large = await _imagine(client)
    await gateway.services.copier.run_once()
    assert await _copied(gateway, too_large["id"]) == "FAILED"
    async with httpx.AsyncClient() as browser:
        streamed = await browser.get(too_large["imageUrl"])
    assert streamed.status_code == 200  # still streamed from the upstream
    assert streamed.headers["cache-control"].startswith("private")

    private, mistyped = await _imagine(client, "a"), await _imagine(client, "b")
    await pool.execute(
        "UPDATE tasks SET upstream_image_url = 'http://169.254.169.254/latest.png' WHERE id = $1",
        int(private["id"]),
    )
    async with _Junk(simulator.base_url) as junk:
        await pool.execute(
            "UPDATE channels SET base_url = $2 WHERE id = $1", channel_id, junk.base_url
        )
        gateway.services.channels.invalidate()
        await pool.execute(
            "UPDATE tasks SET upstream_image_url = $2 WHERE id = $1",
            int(mistyped["id"]),
            f"{junk.base_url}/junk.png",
        )
        await gateway.services.copier.run_once()
        assert await _copied(gateway, private["id"]) == "FAILED"
        assert await _copied(gateway, mistyped["id"]) == "FAILED"
    after = await scrape(gateway)
    for reason in ("too_large", "private_address", "mistyped"):
        moved = metric_value(
            after, "gateway_media_copy_failures_total", reason=reason
        ) - metric_value(before, "gateway_media_copy_failures_total", reason=reason)
        assert moved == 1, reason
    assert await pool.fetchval("SELECT count(*) FROM media_objects") == 0


class _Crashing(FileStore):
    """The real folder store, as a process sees it that dies after its first few writes."""

    def __init__(self, inner: FileStore, writes: int) -> None:
        self._inner = inner
        self._left = writes

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        if self._left == 0:
            raise asyncio.CancelledError  # the process is gone
        self._left -= 1
        await self._inner.put(key, data, content_type)


async def test_a_copy_cut_short_is_finished_once_after_its_claim_lapses(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await start_sim(simulator_factory)
    gateway = await gateway_factory(media={"keep": False, "claim_s": 0.3, "retry_s": 0.05})
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=10 * IMAGINE_PRICE)
    task = await _imagine(client)
    services = gateway.services
    store = services.media
    assert isinstance(store, FileStore)

    dying = MediaCopier(
        services.pool,
        _Crashing(store, 2),
        services.upstream,
        services.channels,
        services.settings.media,
    )
    with pytest.raises(asyncio.CancelledError):
        await dying.run_once()
    kept = await _parts(gateway, task["id"])
    assert len(kept) == 2
    assert await services.copier.run_once() == 0  # its claim still holds
    await asyncio.sleep(0.35)
    assert await services.copier.run_once() == 1
    assert await _copied(gateway, task["id"]) == "DONE"
    parts = await _parts(gateway, task["id"])
    assert len(parts) == 10
    for name, stored in kept.items():
        assert parts[name] == stored  # not copied a second time
    folder = services.settings.media.dir or services.settings.data_dir / "media"
    assert len([p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]) == 10


@pytest.fixture
async def s3_endpoint() -> AsyncIterator[str]:
    """An S3-compatible server (moto's) on loopback with an empty bucket ``media``."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    await asyncio.to_thread(server.start)
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield endpoint
    finally:
        await asyncio.to_thread(server.stop)


async def test_media_kept_in_an_s3_compatible_store_and_linked_presigned(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, s3_endpoint: str
) -> None:
    s3 = {
        "endpoint_url": s3_endpoint,
        "bucket": "media",
        "access_key_id": "test",
        "secret_access_key": "test",
        "path_style": True,
        "prefix": "gw/",
    }
    simulator = await start_sim(simulator_factory)
    gateway = await gateway_factory(media={**FAST_COPIES, "s3": s3, "public_base_url": "presigned"})
    store = gateway.services.media
    assert isinstance(store, S3Store)
    await store.client.create_bucket(Bucket="media")
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=10 * IMAGINE_PRICE)
    grid = await _imagine(client)
    u1 = {"taskId": grid["id"], "customId": button(grid, "U1")}
    upscale = await client.wait_for(submitted_id(await client.post("/mj/submit/action", u1)), DONE)
    for task in (grid, upscale):
        assert await _copied(gateway, task["id"]) == "DONE"
    listed = await store.client.list_objects_v2(Bucket="media", Prefix=f"gw/tasks/{upscale['id']}/")
    assert sorted(o["Key"].split("/")[-1].split("-")[0] for o in listed["Contents"]) == [
        "image",
        "image",
    ]
    simulator.engine.store.remove(await upstream_id(gateway, upscale["id"]))
    async with httpx.AsyncClient() as browser:
        picture = await browser.get(upscale["imageUrl"])
        part = await browser.get(upscale["imageUrl"], headers={"Range": "bytes=0-7"})
    assert picture.status_code == 200
    assert Image.open(io.BytesIO(picture.content)).format == "PNG"
    assert (part.status_code, part.content) == (206, b"\x89PNG\r\n\x1a\n")

    linked = (await client.get(f"/mj/task/{upscale['id']}/fetch")).json()["imageUrl"]
    assert linked.startswith(f"{s3_endpoint}/media/gw/tasks/{upscale['id']}/image-")
    assert "X-Amz-Signature=" in linked
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(linked)).content == picture.content


async def _media_command(gateway: Gateway, database_url: str, *args: str) -> dict[str, Any]:
    """``gateway media ARGS`` as an operator runs it, on the gateway's database and folder."""
    settings = gateway.settings
    env = {
        **os.environ,
        "GATEWAY_DATABASE__URL": database_url,
        "GATEWAY_REDIS__URL": settings.redis.url.get_secret_value() if settings.redis.url else "",
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_LOG__FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "media",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    found: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return found


async def test_the_media_command_reports_the_store_and_copies_again_what_went_missing(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, database_url: str
) -> None:
    simulator = await start_sim(simulator_factory)
    gateway = await gateway_factory(media=FAST_COPIES)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=10 * IMAGINE_PRICE)
    task = await _imagine(client)
    assert await _copied(gateway, task["id"]) == "DONE"
    parts = await _parts(gateway, task["id"])

    report = await _media_command(gateway, database_url, "report")
    assert report["objects"] == len(parts) == 10
    assert report["bytes"] == sum(p.size_bytes for p in parts.values())
    assert report["byType"]["image/webp"]["objects"] == 5
    assert report["copies"] == {"DONE": 1}

    folder = gateway.settings.data_dir / "media"
    for gone in ("image", "image-2"):
        (folder / parts[gone].store_key).unlink()
    async with httpx.AsyncClient() as browser:  # streamed from the upstream meanwhile
        streamed = await browser.get(task["imageUrl"])
    assert (streamed.status_code, streamed.headers["cache-control"]) == (
        200,
        "private, max-age=3600",
    )
    assert hashlib.sha256(streamed.content).hexdigest() == parts["image"].sha256
    refetched = await _media_command(gateway, database_url, "refetch")
    assert refetched == {"store": str(folder), "checked": 10, "missing": 2, "queued": 1}
    assert await _copied(gateway, task["id"]) == "DONE"
    again = await _parts(gateway, task["id"])
    assert again["image-2"].sha256 == parts["image-2"].sha256
    assert (folder / again["image-2"].store_key).is_file()
    assert again["image-1"] == parts["image-1"]  # the rest was left as it was


async def test_retention_deletes_old_media_and_the_task_says_when(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await start_sim(simulator_factory)
    gateway = await gateway_factory(media={**FAST_COPIES, "retention_days": 1})
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=10 * IMAGINE_PRICE)
    old, new = await _imagine(client, "old"), await _imagine(client, "new")
    for task in (old, new):
        assert await _copied(gateway, task["id"]) == "DONE"
    pool, services = gateway.services.pool, gateway.services
    await pool.execute(
        "UPDATE media_objects SET stored_at = now() - interval '2 days' WHERE task_id = $1",
        int(old["id"]),
    )
    keys = [p.store_key for p in (await _parts(gateway, old["id"])).values()]

    assert await apply_retention(pool, services.media, services.settings.media) == 10
    assert await _parts(gateway, old["id"]) == {}
    assert len(await _parts(gateway, new["id"])) == 10
    assert not any(await asyncio.gather(*(services.media.exists(key) for key in keys)))
    deleted = await pool.fetchval(
        "SELECT media_deleted_at FROM tasks WHERE id = $1", int(old["id"])
    )
    assert deleted is not None
    assert await apply_retention(pool, services.media, services.settings.media) == 0


async def test_stored_media_can_be_linked_at_a_cdn(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    cdn = "https://cdn.example.test/media"
    simulator = await start_sim(simulator_factory)
    # The copier's rounds an hour apart: the copy is made when this test runs one.
    media = {**FAST_COPIES, "copy_every_s": 3600.0, "public_base_url": cdn + "/"}
    gateway = await gateway_factory(media=media)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=10 * IMAGINE_PRICE)
    task = await _imagine(client)
    assert task["imageUrl"].startswith(gateway.base_url)  # not stored yet: the gateway's
    assert await gateway.services.copier.run_once() == 1
    assert await _copied(gateway, task["id"]) == "DONE"
    parts = await _parts(gateway, task["id"])

    fetched = (await client.get(f"/mj/task/{task['id']}/fetch")).json()
    assert fetched["imageUrl"] == f"{cdn}/{parts['image'].store_key}"
    assert fetched["imageUrls"][3] == {
        "url": f"{cdn}/{parts['image-4'].store_key}",
        "thumbnail": f"{cdn}/{parts['image-4-thumb'].store_key}",
    }


async def test_a_copy_whose_copier_keeps_dying_is_given_up(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await start_sim(simulator_factory)
    media = {"keep": False, "claim_s": 0.2, "max_attempts": 2}
    gateway = await gateway_factory(media=media)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=10 * IMAGINE_PRICE)
    task = await _imagine(client)
    services = gateway.services
    assert isinstance(services.media, FileStore)
    dying = MediaCopier(
        services.pool,
        _Crashing(services.media, 0),
        services.upstream,
        services.channels,
        services.settings.media,
    )
    for _ in range(2):
        with pytest.raises(asyncio.CancelledError):
            await dying.run_once()
        await asyncio.sleep(0.25)
    assert await services.copier.run_once() == 0
    assert await _copied(gateway, task["id"]) == "FAILED"
