"""The simulator's aiohttp application: the /mj API, the /sim control surface (health, runtime
faults, stats) and the picture downloads under /attachments (no secret, like Discord's CDN)."""

from __future__ import annotations

import re

from aiohttp import web
from pydantic import ValidationError

from gateway.config import SimulatorFaults, SimulatorSettings
from gateway.simulator.buttons import Output
from gateway.simulator.engine import Engine
from gateway.simulator.images import UPLOADS_FOLDER
from gateway.simulator.mj_routes import add_mj_routes
from gateway.simulator.plumbing import ENGINE, guarded, json_response
from gateway.simulator.protocol import spring_error_body
from gateway.simulator.validation import Body

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
    """A task's picture (final or preview) or an uploaded image."""
    engine = request.app[ENGINE]
    engine.requests["attachments"] += 1
    folder, filename = request.match_info["folder"], request.match_info["filename"]
    if folder == UPLOADS_FOLDER:
        upload = engine.images.upload(filename)
        if upload is None:
            raise web.HTTPNotFound()
        return web.Response(body=upload.data, content_type=upload.mime_type)
    task = engine.store.get(folder)
    name = filename.removesuffix(".png")
    if task is None or task.output not in _PICTURES or name == filename:
        raise web.HTTPNotFound()
    preview = _PREVIEW.fullmatch(name)
    if name != task.image_name and preview is None:
        raise web.HTTPNotFound()
    pct = int(preview.group(1)) if preview is not None else None
    png = await engine.images.png(f"{task.id}/{name}", task.recipe, pct)
    return web.Response(body=png, content_type="image/png")


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
