"""``/api/admin/tasks`` and ``/api/admin/ledger``: the operator's searches."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.params import FromQuery, QueryParameter

from gateway import admin
from gateway.admin import as_json
from gateway.api.admin.bodies import DEFAULT_PAGE, Page
from gateway.api.dependencies import Svc


@get("/tasks")
async def search_tasks(
    services: Svc,
    user_id: Annotated[int | None, QueryParameter(name="userId")] = None,
    key_id: Annotated[int | None, QueryParameter(name="keyId")] = None,
    channel_id: Annotated[int | None, QueryParameter(name="channelId")] = None,
    status: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    before: FromQuery[int | None] = None,
    limit: Page = DEFAULT_PAGE,
) -> dict[str, Any]:
    """Tasks submitted in [since, until) (ISO-8601), newest first, by user, key, channel or
    status; ``before`` (a task id) pages back. Upstream ids and channels show here."""
    search = admin.TaskSearch(
        user_id=user_id,
        api_key_id=key_id,
        channel_id=channel_id,
        status=status,
        since_ms=admin.epoch_ms(admin.instant("since", since)),
        until_ms=admin.epoch_ms(admin.instant("until", until)),
        before_id=before,
        limit=limit,
    )
    tasks = await admin.search_tasks(services.pool, search)
    return {"tasks": [admin.task_record(task) for task in tasks]}


@get("/ledger")
async def ledger(
    services: Svc,
    user_id: Annotated[int | None, QueryParameter(name="userId")] = None,
    key_id: Annotated[int | None, QueryParameter(name="keyId")] = None,
    kind: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    before: FromQuery[int | None] = None,
    limit: Page = DEFAULT_PAGE,
) -> dict[str, Any]:
    """Ledger rows in [since, until), newest first; ``before`` (a row id) pages back."""
    search = admin.LedgerSearch(
        user_id=user_id,
        api_key_id=key_id,
        kind=kind,
        since=admin.instant("since", since),
        until=admin.instant("until", until),
        before_id=before,
        limit=limit,
    )
    return {"entries": as_json(await admin.ledger(services.pool, search))}


ROUTES = [search_tasks, ledger]
