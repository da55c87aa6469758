"""Upstream channels: their live state, and adding, editing, enabling, disabling, testing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from gateway import admin
from gateway.admin import ChannelChanges
from gateway.api.dependencies import Svc
from gateway.container import Services
from gateway.errors import BadRequest
from gateway.routing.flavours import DEFAULT_FLAVOUR, FLAVOURS
from gateway.storage import console as console_store

from ..forms import Form, read_form
from ..web import ADMIN, AnyRequest, Next, SignedIn, act, page


async def channel_rows(services: Services) -> list[dict[str, Any]]:
    """Every channel with its state now and its tasks in flight."""
    cooling = await services.cooldowns.cooling()
    in_flight = await console_store.open_tasks_by_channel(services.pool)
    return [
        {
            "channel": channel,
            "view": admin.channel_view(channel, cooling),
            "in_flight": in_flight.get(channel.id, 0),
        }
        for channel in await admin.list_channels(services.pool)
    ]


# Channels


def _channel_changes(form: Form, *, new: bool) -> ChannelChanges:
    """The channel form's fields; on an edit, an empty secret keeps the secret, and empty
    actions or max in flight lift those limits."""
    secret = form.secret("secret").strip()
    actions = form.words("actions", "Actions")
    max_in_flight = form.number("max_in_flight", "Max in flight", low=1, high=1_000_000)
    modes = form.picked("modes")
    bot_types = form.picked("bot_types")
    return ChannelChanges(
        name=None if new else form.text("name", "Name", required=True, max_length=128),
        base_url=None if new else form.text("base_url", "Base URL", required=True, max_length=2048),
        secret="" if form.checked("remove_secret") else secret or None,
        weight=form.number("weight", "Weight", low=1, high=10_000),
        priority=form.number("priority", "Priority", low=-1000, high=1000),
        modes=modes or (None if new else []),
        bot_types=bot_types or (None if new else []),
        actions=actions or None,
        clear_actions=not new and not actions,
        max_in_flight=max_in_flight,
        clear_max_in_flight=not new and max_in_flight is None,
        flavour=form.text("flavour", "Flavour") or None,
    )


def _channel_form(**context: Any) -> dict[str, Any]:
    return {
        "modes": admin.MODES,
        "bot_types": admin.BOT_TYPES,
        "flavours": FLAVOURS,
        "default_flavour": DEFAULT_FLAVOUR,
        **context,
    }


@get("/channels")
async def channels(request: AnyRequest, services: Svc, visitor: SignedIn) -> Template:
    return await page(
        request,
        "admin/channels.html",
        visitor,
        **_channel_form(channels=await channel_rows(services)),
    )


@post("/channels")
async def add_channel(request: AnyRequest, services: Svc, visitor: SignedIn) -> Redirect:
    form = await read_form(request)

    async def add() -> Next:
        name = form.text("name", "Name", required=True, max_length=128)
        url = form.text("base_url", "Base URL", required=True, max_length=2048)
        channel_id = await admin.add_channel(
            services.pool, services.box, name, url, _channel_changes(form, new=True)
        )
        services.channels.invalidate()
        return Next(f"{ADMIN}/channels/{channel_id}", f"channel {name} added")

    return await act(request, visitor, f"{ADMIN}/channels", add())


@get("/channels/{channel_id:int}")
async def channel_page(
    request: AnyRequest, services: Svc, visitor: SignedIn, channel_id: FromPath[int]
) -> Template:
    settings = await admin.channel_settings(services.pool, channel_id)
    in_flight = await console_store.open_tasks_by_channel(services.pool)
    return await page(
        request,
        "admin/channel.html",
        visitor,
        **_channel_form(
            channel=settings,
            view=admin.channel_view(settings, await services.cooldowns.cooling()),
            in_flight=in_flight.get(channel_id, 0),
        ),
    )


async def _change_channel(
    request: AnyRequest,
    services: Services,
    visitor: SignedIn,
    channel_id: int,
    changes: Callable[[], ChannelChanges],
    said: str,
) -> Redirect:
    async def change() -> str:
        await admin.edit_channel(services.pool, services.box, channel_id, changes())
        services.channels.invalidate()
        return said

    return await act(request, visitor, f"{ADMIN}/channels/{channel_id}", change())


@post("/channels/{channel_id:int}")
async def edit_channel(
    request: AnyRequest, services: Svc, visitor: SignedIn, channel_id: FromPath[int]
) -> Redirect:
    """Every process sees the change within 2 s."""
    form = await read_form(request)
    return await _change_channel(
        request, services, visitor, channel_id, lambda: _channel_changes(form, new=False), "saved"
    )


@post("/channels/{channel_id:int}/enable")
async def enable_channel(
    request: AnyRequest, services: Svc, visitor: SignedIn, channel_id: FromPath[int]
) -> Redirect:
    return await _change_channel(
        request, services, visitor, channel_id, lambda: ChannelChanges(enabled=True), "enabled"
    )


@post("/channels/{channel_id:int}/disable")
async def disable_channel(
    request: AnyRequest, services: Svc, visitor: SignedIn, channel_id: FromPath[int]
) -> Redirect:
    """No new work goes to the channel; its open tasks are still followed to their end."""
    return await _change_channel(
        request,
        services,
        visitor,
        channel_id,
        lambda: ChannelChanges(enabled=False),
        "disabled: no new work goes to it; its open tasks are followed to their end",
    )


@post("/channels/{channel_id:int}/test")
async def test_channel(
    request: AnyRequest, services: Svc, visitor: SignedIn, channel_id: FromPath[int]
) -> Redirect:
    """Ask the channel, with its secret, for an empty task list; changes nothing."""

    async def probe() -> str:
        found = await admin.test_channel(services.pool, services.box, services.upstream, channel_id)
        said = f"{found.detail} ({found.seconds:.2f} s)"
        if not found.ok:
            raise BadRequest(f"test failed: {said}")
        return f"test ok: {said}"

    return await act(request, visitor, f"{ADMIN}/channels/{channel_id}", probe())


ROUTES = [
    channels,
    add_channel,
    channel_page,
    edit_channel,
    enable_channel,
    disable_channel,
    test_channel,
]
