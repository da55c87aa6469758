"""``/api/me``: a client's own account, with its API key: balance, key limit, webhook signing
secret, and usage by priced action and day.

Answers are JSON objects with camelCase keys; errors have the ``/mj`` shape ``{code,
description, result: null}``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from litestar import get
from litestar.di import Provide
from litestar.params import FromQuery

from gateway.admin import as_json
from gateway.api.dependencies import Caller, Svc, provide_principal
from gateway.errors import BadRequest
from gateway.storage.usage import UsageRow

DEFAULT_USAGE_DAYS = 30


def usage_rows(rows: list[UsageRow]) -> list[dict[str, Any]]:
    """Usage rows as ``/api/me`` and ``/api/admin/usage`` answer them (days in ISO form)."""
    return [{**as_json(row), "day": row.day.isoformat()} for row in rows]


def usage_period(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """[since, until) from ISO days (UTC); by default the last 30 days, today included."""
    try:
        end = date.fromisoformat(until) if until else datetime.now(UTC).date()
        start = date.fromisoformat(since) if since else end - timedelta(days=DEFAULT_USAGE_DAYS - 1)
    except ValueError:
        raise BadRequest("since and until are days: YYYY-MM-DD") from None
    midnight = datetime.min.time().replace(tzinfo=UTC)
    return datetime.combine(start, midnight), datetime.combine(end + timedelta(days=1), midnight)


@get("/api/me", dependencies={"principal": Provide(provide_principal)})
async def me(
    services: Svc,
    principal: Caller,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """The caller's balance, key limit, webhook signing secret, and usage of the user and of
    this key by action and day."""
    account = await services.billing.account(principal)
    start, end = usage_period(since, until)
    return {
        "userId": account.user_id,
        "name": account.name,
        "group": account.group_name,
        "balanceUnits": account.balance_units,
        "webhookSecret": principal.webhook_secret,
        "key": {
            "id": account.key_id,
            "name": account.key_name,
            "hint": account.key_hint,
            "limitUnits": account.key_limit_units,
        },
        "since": start.date().isoformat(),
        "until": (end - timedelta(days=1)).date().isoformat(),
        "usage": usage_rows(await services.billing.usage(account.user_id, None, start, end)),
        "keyUsage": usage_rows(await services.billing.usage(None, account.key_id, start, end)),
    }
