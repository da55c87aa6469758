"""``/api/admin/channels``: upstream channels, their state, and a test call."""

from __future__ import annotations

from typing import Any

from litestar import get, patch, post
from litestar.params import FromPath, JSONBody

from gateway import admin
from gateway.admin import ChannelChanges, as_json
from gateway.api.admin.bodies import ChannelBody
from gateway.api.dependencies import Svc
from gateway.container import Services
from gateway.errors import BadRequest


@get("/channels")
async def list_channels(services: Svc) -> dict[str, Any]:
    """Every channel's settings and state (up, cooling, disabled); a secret shows only as
    ``hasSecret``."""
    cooling = await services.cooldowns.cooling()
    found = await admin.list_channels(services.pool)
    return {"channels": [admin.channel_view(channel, cooling) for channel in found]}


@post("/channels")
async def create_channel(data: JSONBody[ChannelBody], services: Svc) -> dict[str, Any]:
    if data.name is None or data.base_url is None:
        raise BadRequest("name and baseUrl are required")
    channel_id = await admin.add_channel(
        services.pool, services.box, data.name, data.base_url, data.changes()
    )
    return await _channel_answer(services, channel_id)


@get("/channels/{channel_id:int}")
async def show_channel(services: Svc, channel_id: FromPath[int]) -> dict[str, Any]:
    return await _channel_answer(services, channel_id)


@patch("/channels/{channel_id:int}")
async def edit_channel(
    data: JSONBody[ChannelBody], services: Svc, channel_id: FromPath[int]
) -> dict[str, Any]:
    """Change a channel's settings; every process sees them within 2 s."""
    await admin.edit_channel(services.pool, services.box, channel_id, data.changes())
    return await _channel_answer(services, channel_id)


@post("/channels/{channel_id:int}/enable", status_code=200)
async def enable_channel(services: Svc, channel_id: FromPath[int]) -> dict[str, Any]:
    await admin.edit_channel(services.pool, services.box, channel_id, ChannelChanges(enabled=True))
    return await _channel_answer(services, channel_id)


@post("/channels/{channel_id:int}/disable", status_code=200)
async def disable_channel(services: Svc, channel_id: FromPath[int]) -> dict[str, Any]:
    """No new work goes to the channel until the operator enables it again; its open tasks
    are still followed to their end."""
    await admin.edit_channel(services.pool, services.box, channel_id, ChannelChanges(enabled=False))
    return await _channel_answer(services, channel_id)


@post("/channels/{channel_id:int}/test", status_code=200)
async def test_channel(services: Svc, channel_id: FromPath[int]) -> dict[str, Any]:
    """Ask the channel, with its secret, for an empty task list (what the health probes ask):
    ``{"ok", "detail", "seconds"}``. Changes nothing, enabled or not."""
    result = await admin.test_channel(services.pool, services.box, services.upstream, channel_id)
    return as_json(result)  # type: ignore[no-any-return]


async def _channel_answer(services: Services, channel_id: int) -> dict[str, Any]:
    services.channels.invalidate()
    settings = await admin.channel_settings(services.pool, channel_id)
    return admin.channel_view(settings, await services.cooldowns.cooling())


ROUTES = [
    list_channels,
    create_channel,
    show_channel,
    edit_channel,
    enable_channel,
    disable_channel,
    test_channel,
]
