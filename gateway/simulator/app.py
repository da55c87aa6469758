"""The simulator's aiohttp application: the /mj API, the /sim control surface (health, runtime
faults, stats) and the picture downloads under /attachments (no secret, like Discord's CDN, and
like its links, expiring when ``attachment_ttl_s`` is set)."""

from __future__ import annotations

import re

from aiohttp import web
from pydantic import ValidationError

from gateway.config import SimulatorFaults, SimulatorSettings
from gateway.simulator.buttons import Output
from gateway.simulator.engine import Engine
from gateway.simulator.images import UPLOADS_FOLDER, expired, render_thumbnail
from gateway.simulator.lifecycle import GRID_TILES, VIDEO_OUTPUTS
from gateway.simulator.mj_routes import add_mj_routes
from gateway.simulator.plumbing import ENGINE, guarded, json_response
from gateway.simulator.protocol import spring_error_body
from gateway.simulator.tasks import ImageRecipe, Task
from gateway.simulator.validation import Body
from gateway.simulator.videos import render_mp4

MAX_BODY_BYTES = 64 * 1024 * 1024
_PREVIEW = re.compile(r"preview_(\d{1,3})")
_PICTURES = frozenset({Output.GRID, Output.SINGLE, Output.SWAP})


def default_base_url(settings: SimulatorSettings) -> str:
    return settings.public_base_url or f"http://{settings.host}:{settings.port}"


async def health(request: web.Request) -> web.StreamResponse:
    return json_response({"status": "ok"})


async def get_faults(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[ENGINE].faults.model_dump())


async def put_faults(request: web.Request) -> web.StreamResponse:
    """Replace the fault rates named in the (partial) body; answer the full new set."""
    engine = request.app[ENGINE]
    body = Body.parse(await request.read())
    changes = body.fields()
    unknown = sorted(set(changes) - set(SimulatorFaults.model_fields))
    if unknown:
        return _control_error(request, f"unknown fault fields: {', '.join(unknown)}")
    try:
        engine.faults = SimulatorFaults.model_validate({**engine.faults.model_dump(), **changes})
    except ValidationError as error:
        return _control_error(request, str(error))
    return json_response(engine.faults.model_dump())


def _control_error(request: web.Request, message: str) -> web.Response:
    return json_response(
        {**spring_error_body(400, "Bad Request", request.path), "message": message}, 400
    )


async def stats(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[ENGINE].stats())


async def attachment(request: web.Request) -> web.StreamResponse:
    """A task's picture (final or preview), one image or video of its batch and their WebP
    thumbnails, or an uploaded image. Videos answer byte ranges, as a CDN does."""
    engine = request.app[ENGINE]
    engine.requests["attachments"] += 1
    folder, filename = request.match_info["folder"], request.match_info["filename"]
    if folder == UPLOADS_FOLDER:
        upload = engine.images.upload(filename)
        if upload is None:
            raise web.HTTPNotFound()
        return web.Response(body=upload.data, content_type=upload.mime_type)
    task = engine.store.get(folder)
    stem, _, suffix = filename.rpartition(".")
    if task is None or not stem or expired(request.query.get("ex")):
        raise web.HTTPNotFound(text="This content is no longer available.")
    images = engine.images
    if suffix == "png" and task.output in _PICTURES:
        preview = _PREVIEW.fullmatch(stem)
        if stem == task.image_name or preview is not None:
            pct = int(preview.group(1)) if preview is not None else None
            png = await images.png(f"{task.id}/{stem}", task.recipe, pct)
            return web.Response(body=png, content_type="image/png")
    recipe = _part_recipe(task, stem)
    if recipe is None:
        raise web.HTTPNotFound()
    key = f"{task.id}/{filename}"
    if suffix == "webp":
        webp = await images.rendered(key, lambda: render_thumbnail(recipe, images.size_px))
        return web.Response(body=webp, content_type="image/webp")
    if suffix == "png" and task.output is Output.GRID:
        png = await images.png(key, recipe, None)
        return web.Response(body=png, content_type="image/png")
    if suffix == "mp4" and task.output in VIDEO_OUTPUTS:
        mp4 = await images.rendered(key, lambda: render_mp4(recipe, images.size_px))
        return _ranged(request, mp4, "video/mp4")
    raise web.HTTPNotFound()


def _part_recipe(task: Task, stem: str) -> ImageRecipe | None:
    """The picture of ``<image name>_<n>``: the n-th tile of a grid or video of a batch."""
    name, _, number = stem.rpartition("_")
    if name != task.image_name or number not in ("1", "2", "3", "4"):
        return None
    if task.output is Output.VIDEO_SINGLE:
        return task.recipe if number == "1" else None
    count = GRID_TILES if task.output is Output.GRID else task.video_count
    if int(number) > count:
        return None
    return ImageRecipe(task.recipe.seed, int(number), task.recipe.aspect)


def _ranged(request: web.Request, data: bytes, content_type: str) -> web.Response:
    """``data``, or the one byte range the request asks for (206), or 416."""
    headers = {"Accept-Ranges": "bytes"}
    try:
        wanted = request.http_range
    except ValueError:
        wanted = slice(len(data), None)
    if wanted.start is None and wanted.stop is None:
        return web.Response(body=data, content_type=content_type, headers=headers)
    start, stop, _ = wanted.indices(len(data))
    if start >= stop:
        headers["Content-Range"] = f"bytes */{len(data)}"
        return web.Response(status=416, headers=headers)
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
    return web.Response(
        status=206, body=data[start:stop], content_type=content_type, headers=headers
    )


def create_simulator_app(settings: SimulatorSettings) -> web.Application:
    """The whole simulator as an aiohttp application; its engine stops with the app."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    engine = Engine(settings, default_base_url(settings))
    app[ENGINE] = engine
    add_mj_routes(app, settings.flavour)
    app.router.add_get("/sim/health", guarded("sim/health", health))
    app.router.add_get("/sim/faults", guarded("sim/faults", get_faults))
    app.router.add_put("/sim/faults", guarded("sim/faults", put_faults))
    app.router.add_get("/sim/stats", guarded("sim/stats", stats))
    app.router.add_get("/attachments/{folder}/{filename}", attachment)

    async def close_engine(_app: web.Application) -> None:
        await engine.close()

    app.on_cleanup.append(close_engine)
    return app
