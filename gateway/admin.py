"""What an operator does: users, keys, channels, prices and groups, money, and the searches
of tasks and the ledger; each input checked here, so the admin API and the ``gateway admin``
CLI (which talks to the database directly) refuse the same things with the same words.

``as_json`` is the one shape of every view, for both.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gateway.auth.keys import generate_key, hash_key, key_hint
from gateway.domain import Task
from gateway.errors import BadRequest, Conflict, NotFound
from gateway.routing.cooldowns import Cooldown
from gateway.sealing import SecretBox
from gateway.storage import accounts, billing, channels
from gateway.storage import tasks as task_store
from gateway.storage.ledger import LEDGER_KINDS, LedgerRow, LedgerSearch, ledger_rows
from gateway.storage.tasks import TaskSearch
from gateway.upstream.client import ProbeResult, UpstreamClient

PRICE_ACTION = re.compile(r"mj_[a-z0-9_]+")
GROUP_NAME = re.compile(r"[a-z0-9_-]{1,64}")
MODES = ("FAST", "RELAX", "TURBO")
MAX_UNITS = 10**15  # one top-up, adjustment, limit or price: keeps balances far from BIGINT's end
MAX_PAGE = 500  # rows in one page of a listing
TASK_STATUSES = (
    "SUBMITTING", "REJECTED", "NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS", "FAILURE",
    "SUCCESS", "CANCEL",
)  # fmt: skip
MAX_RATE_LIMIT = 2**31 - 1  # requests a minute or open tasks: the columns are INTEGER


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: int
    key: str  # shown once, never stored


async def create_user(
    pool: asyncpg.Pool, name: str, balance_units: int = 0, group: str = "default"
) -> int:
    if balance_units < 0:
        raise BadRequest("balance must not be negative")
    try:
        return await accounts.create_user(
            pool, name, balance_units, group, secrets.token_urlsafe(32)
        )
    except asyncpg.UniqueViolationError:
        raise BadRequest(f"user {name} exists") from None
    except asyncpg.ForeignKeyViolationError:
        raise BadRequest(f"no group {group}") from None


async def issue_key(
    pool: asyncpg.Pool,
    user_id: int,
    *,
    name: str = "",
    quota_units: int | None = None,
    expires_at: datetime | None = None,
    allowed_actions: list[str] | None = None,
    allowed_cidrs: list[str] | None = None,
    requests_per_minute: int | None = None,
    max_open_tasks: int | None = None,
) -> IssuedKey:
    key = generate_key()
    try:
        key_id = await accounts.create_key(
            pool,
            user_id,
            hash_key(key),
            key_hint(key),
            name=name,
            quota_units=quota_units,
            expires_at=expires_at,
            allowed_actions=allowed_actions,
            allowed_cidrs=allowed_cidrs,
            requests_per_minute=requests_per_minute,
            max_open_tasks=max_open_tasks,
        )
    except asyncpg.ForeignKeyViolationError:
        raise BadRequest(f"no user {user_id}") from None
    except (
        asyncpg.DataError,
        asyncpg.InvalidTextRepresentationError,
        asyncpg.CheckViolationError,
    ) as exc:
        raise BadRequest(f"invalid key settings: {exc}") from None
    return IssuedKey(key_id, key)


CHANNEL_NAME = re.compile(r"[\x21-\x7e]{1,128}")
BASE_URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")
BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")


@dataclass(frozen=True, slots=True)
class ChannelChanges:
    """What an operator sets on a channel; None leaves a field as it is (``clear_actions``
    and ``clear_max_in_flight`` make those two unlimited again, ``secret=""`` removes it)."""

    name: str | None = None
    base_url: str | None = None
    secret: str | None = None
    weight: int | None = None
    priority: int | None = None
    modes: list[str] | None = None
    actions: list[str] | None = None
    clear_actions: bool = False
    bot_types: list[str] | None = None
    max_in_flight: int | None = None
    clear_max_in_flight: bool = False
    enabled: bool | None = None


def _channel_columns(box: SecretBox, changes: ChannelChanges) -> dict[str, Any]:
    """The columns to write, each value checked; BadRequest names the first bad one."""
    if changes.name is not None and not CHANNEL_NAME.fullmatch(changes.name):
        raise BadRequest("a channel name is 1-128 printable characters without spaces")
    if changes.base_url is not None and not BASE_URL.fullmatch(changes.base_url):
        raise BadRequest("baseUrl must be an http(s) URL with no query or fragment")
    if changes.weight is not None and not 1 <= changes.weight <= 10_000:
        raise BadRequest("weight is 1 to 10000")
    if changes.priority is not None and not -1000 <= changes.priority <= 1000:
        raise BadRequest("priority is -1000 to 1000")
    if changes.modes is not None and (not changes.modes or not set(changes.modes) <= set(MODES)):
        raise BadRequest(f"modes are one or more of {', '.join(MODES)}")
    if changes.actions is not None and not all(PRICE_ACTION.fullmatch(a) for a in changes.actions):
        raise BadRequest("actions are priced actions: mj_ and lower-case letters, digits or _")
    bot_types = changes.bot_types
    if bot_types is not None and (not bot_types or not set(bot_types) <= set(BOT_TYPES)):
        raise BadRequest(f"botTypes are one or more of {', '.join(BOT_TYPES)}")
    if changes.max_in_flight is not None and not 1 <= changes.max_in_flight <= 1_000_000:
        raise BadRequest("maxInFlight is 1 to 1000000")
    columns: dict[str, Any] = {
        name: getattr(changes, name)
        for name in ("name", "base_url", "weight", "priority", "modes", "actions", "bot_types")
        if getattr(changes, name) is not None
    }
    if changes.secret is not None:
        secret = changes.secret
        columns["secret_sealed"] = box.seal(secret, channels.SECRET_PURPOSE) if secret else None
    if changes.clear_actions:
        columns["actions"] = None
    if changes.max_in_flight is not None or changes.clear_max_in_flight:
        columns["max_in_flight"] = changes.max_in_flight
    if changes.enabled is not None:
        columns["enabled"] = changes.enabled
    return columns


async def add_channel(
    pool: asyncpg.Pool,
    box: SecretBox,
    name: str,
    base_url: str,
    changes: ChannelChanges = ChannelChanges(),
) -> int:
    """A new channel, enabled unless ``changes.enabled`` is False; its secret sealed."""
    columns = _channel_columns(box, replace(changes, name=name, base_url=base_url))
    try:
        channel_id = await channels.create_channel(
            pool,
            name,
            base_url,
            columns.get("secret_sealed"),
            weight=changes.weight or 1,
            priority=changes.priority or 0,
            modes=changes.modes,
            actions=changes.actions,
            bot_types=changes.bot_types,
            max_in_flight=changes.max_in_flight,
            enabled=changes.enabled is not False,
        )
    except asyncpg.UniqueViolationError:
        raise BadRequest(f"channel {name} exists") from None
    return channel_id


async def edit_channel(
    pool: asyncpg.Pool, box: SecretBox, channel_id: int, changes: ChannelChanges
) -> None:
    columns = _channel_columns(box, changes)
    if not columns:
        raise BadRequest("nothing to change")
    try:
        found = await channels.update_channel(pool, channel_id, columns)
    except asyncpg.UniqueViolationError:
        raise BadRequest(f"channel {changes.name} exists") from None
    if not found:
        raise NotFound(f"no channel {channel_id}")


def channel_view(
    settings: channels.ChannelSettings, cooling: dict[int, Cooldown]
) -> dict[str, Any]:
    """A channel's settings and its health now: ``state`` is up, cooling (resting: left out of
    new work until ``coolingUntil``, for ``coolingReason``) or disabled (by the operator)."""
    rest = cooling.get(settings.id)
    state = "disabled" if not settings.enabled else "cooling" if rest else "up"
    view: dict[str, Any] = as_json(settings)
    view["state"] = state
    view["coolingUntil"] = (
        datetime.fromtimestamp(rest.until_ms / 1000, UTC).isoformat() if rest else None
    )
    view["coolingReason"] = rest.reason.value if rest else None
    return view


async def test_channel(
    pool: asyncpg.Pool, box: SecretBox, upstream: UpstreamClient, channel_id: int
) -> ProbeResult:
    """Ask the channel, with its secret, for an empty task list: whether it answers as a
    midjourney-proxy should (enabled or not; its state is not changed)."""
    channel = await channels.get_channel(pool, box, channel_id)
    if channel is None:
        raise NotFound(f"no channel {channel_id}")
    return await upstream.probe(channel)


async def channel_settings(pool: asyncpg.Pool, channel_id: int) -> channels.ChannelSettings:
    found = await channels.channel_settings(pool, channel_id)
    if not found:
        raise NotFound(f"no channel {channel_id}")
    return found[0]


async def channel_id_by_name(pool: asyncpg.Pool, name: str) -> int:
    for channel in await channels.channel_settings(pool):
        if channel.name == name:
            return channel.id
    raise BadRequest(f"no channel {name}")


async def user_id_by_name(pool: asyncpg.Pool, name: str) -> int:
    user_id = await accounts.find_user_id(pool, name)
    if user_id is None:
        raise BadRequest(f"no user {name}")
    return user_id


async def revoke_key(pool: asyncpg.Pool, key_id: int) -> bytes:
    """Revoke a key in the database; returns its hash, to announce the revocation with."""
    key_hash = await accounts.revoke_key(pool, key_id)
    if key_hash is None:
        raise BadRequest(f"no active key {key_id}")
    return key_hash


@dataclass(frozen=True, slots=True)
class Credit:
    applied: bool  # False: this reference was applied before, nothing moved now
    balance_units: int
    source: str


async def credit(
    pool: asyncpg.Pool,
    user_id: int,
    amount_units: int,
    *,
    kind: str,
    reason: str,
    reference: str | None = None,
) -> Credit:
    """A top-up (TOPUP, positive) or an adjustment (ADJUST, either sign), with its ledger row.

    ``reference`` (a payment id, a ticket) makes it idempotent: the same reference of the same
    kind moves money once, however often it is sent."""
    if abs(amount_units) > MAX_UNITS:
        raise BadRequest(f"at most {MAX_UNITS} units at a time")
    if kind == "TOPUP" and amount_units <= 0:
        raise BadRequest("a top-up must be positive")
    if kind == "ADJUST" and amount_units == 0:
        raise BadRequest("an adjustment must not be zero")
    if not reason.strip():
        raise BadRequest("a reason is required")
    source = f"{kind.lower()}:{reference or uuid.uuid4()}"
    balance = await billing.credit_user(pool, user_id, amount_units, kind, source, reason)
    if balance is not None:
        return Credit(True, balance, source)
    current = await accounts.user_balance(pool, user_id)
    if current is None:
        raise NotFound(f"no user {user_id}")
    earlier = await billing.ledger_entry(pool, source, kind)
    if earlier == (user_id, amount_units):
        return Credit(False, current, source)
    if earlier is not None:
        raise Conflict(f"reference {reference} was used for another {kind.lower()}")
    raise BadRequest(f"the balance ({current}) cannot go below zero")


async def set_key_limit(
    pool: asyncpg.Pool, key_id: int, limit_units: int | None, reason: str
) -> None:
    """A key's remaining limit from now on (None: unlimited); recorded in the ledger."""
    if limit_units is not None and not 0 <= limit_units <= MAX_UNITS:
        raise BadRequest(f"a key limit is 0 to {MAX_UNITS} units")
    source = f"key-limit:{uuid.uuid4()}"
    if not await billing.set_key_limit(pool, key_id, limit_units, source, reason or "key limit"):
        raise NotFound(f"no key {key_id}")


def _check_rate_limits(requests_per_minute: int | None, max_open_tasks: int | None) -> None:
    for name, value in (
        ("requests per minute", requests_per_minute),
        ("open tasks", max_open_tasks),
    ):
        if value is not None and not 1 <= value <= MAX_RATE_LIMIT:
            raise BadRequest(f"a limit of {name} is 1 to {MAX_RATE_LIMIT}, or none")


async def set_user_limits(
    pool: asyncpg.Pool,
    user_id: int,
    *,
    requests_per_minute: int | None,
    max_open_tasks: int | None,
) -> None:
    """A user's rate limits across all of their keys (None: no limit of that kind); every
    process applies them within its auth cache lifetime. NotFound for an unknown user."""
    _check_rate_limits(requests_per_minute, max_open_tasks)
    if not await accounts.set_user_limits(
        pool, user_id, requests_per_minute=requests_per_minute, max_open_tasks=max_open_tasks
    ):
        raise NotFound(f"no user {user_id}")


async def set_key_rate_limits(
    pool: asyncpg.Pool,
    key_id: int,
    *,
    requests_per_minute: int | None,
    max_open_tasks: int | None,
) -> None:
    """A key's own rate limits (None: no limit of that kind); every process applies them within
    its auth cache lifetime. NotFound for an unknown key."""
    _check_rate_limits(requests_per_minute, max_open_tasks)
    if not await accounts.set_key_rate_limits(
        pool, key_id, requests_per_minute=requests_per_minute, max_open_tasks=max_open_tasks
    ):
        raise NotFound(f"no key {key_id}")


async def set_price(pool: asyncpg.Pool, action: str, price_units: int) -> None:
    """The base price of a priced action (``mj_...``); tasks already held keep their price."""
    if not 0 <= price_units <= MAX_UNITS:
        raise BadRequest(f"a price is 0 to {MAX_UNITS} units")
    if not PRICE_ACTION.fullmatch(action):
        raise BadRequest("a priced action is mj_ and lower-case letters, digits or _")
    await billing.set_price(pool, action, price_units)


async def set_mode_ratio(pool: asyncpg.Pool, mode: str, ratio_bp: int) -> None:
    """The multiplier of a speed mode, in basis points (10000 = x1)."""
    if mode not in MODES:
        raise BadRequest(f"mode is one of {', '.join(MODES)}")
    if ratio_bp < 0:
        raise BadRequest("a ratio must not be negative")
    await billing.set_mode_ratio(pool, mode, ratio_bp)


async def set_group(
    pool: asyncpg.Pool, name: str, ratio_bp: int, description: str | None = None
) -> None:
    """Create a user group or change its price ratio, in basis points (10000 = x1)."""
    if ratio_bp < 0:
        raise BadRequest("a ratio must not be negative")
    if not GROUP_NAME.fullmatch(name):
        raise BadRequest("a group name is 1-64 of a-z, 0-9, _ and -")
    await billing.set_group(pool, name, ratio_bp, description)


async def set_user_group(pool: asyncpg.Pool, user_id: int, group: str) -> None:
    try:
        found = await billing.set_user_group(pool, user_id, group)
    except asyncpg.ForeignKeyViolationError:
        raise BadRequest(f"no group {group}") from None
    if not found:
        raise NotFound(f"no user {user_id}")


@dataclass(frozen=True, slots=True)
class PriceList:
    prices_units: dict[str, int]
    mode_ratios_bp: dict[str, int]
    groups: list[billing.Group]


async def price_list(pool: asyncpg.Pool) -> PriceList:
    prices, modes = await billing.load_price_book(pool)
    return PriceList(dict(sorted(prices.items())), modes, await billing.groups(pool))


async def list_users(
    pool: asyncpg.Pool, name_prefix: str | None, before_id: int | None, limit: int
) -> list[accounts.UserRecord]:
    return await accounts.list_users(
        pool, name_prefix=name_prefix, before_id=before_id, limit=page_size(limit)
    )


async def list_keys(
    pool: asyncpg.Pool,
    user_id: int | None,
    include_revoked: bool,
    before_id: int | None,
    limit: int,
) -> list[accounts.KeyListing]:
    return await accounts.list_keys(
        pool,
        user_id=user_id,
        include_revoked=include_revoked,
        before_id=before_id,
        limit=page_size(limit),
    )


async def list_channels(pool: asyncpg.Pool) -> list[channels.ChannelSettings]:
    return await channels.channel_settings(pool)


async def user(pool: asyncpg.Pool, user_id: int) -> accounts.UserRecord:
    found = await accounts.get_user(pool, user_id)
    if found is None:
        raise NotFound(f"no user {user_id}")
    return found


async def set_user_enabled(pool: asyncpg.Pool, user_id: int, enabled: bool) -> list[bytes]:
    """Enable or disable a user (every key of theirs with them); answers the hashes of their
    keys, for the caller to announce, so that every process drops them from its cache now."""
    key_hashes = await accounts.set_user_enabled(pool, user_id, enabled)
    if key_hashes is None:
        raise NotFound(f"no user {user_id}")
    return key_hashes


def instant(name: str, value: str | None) -> datetime | None:
    """An ISO-8601 day or time an operator typed (UTC unless it says otherwise)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} is an ISO-8601 time, e.g. 2026-12-03T10:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def epoch_ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit is 1 to {MAX_PAGE}")
    return limit


async def search_tasks(pool: asyncpg.Pool, search: TaskSearch) -> list[Task]:
    if search.status is not None and search.status not in TASK_STATUSES:
        raise BadRequest(f"status is one of {', '.join(TASK_STATUSES)}")
    page_size(search.limit)
    return await task_store.search_tasks(pool, search)


async def ledger(pool: asyncpg.Pool, search: LedgerSearch) -> list[LedgerRow]:
    if search.kind is not None and search.kind not in LEDGER_KINDS:
        raise BadRequest(f"kind is one of {', '.join(LEDGER_KINDS)}")
    page_size(search.limit)
    return await ledger_rows(pool, search)


def as_json(value: Any) -> Any:
    """An operator's view (dataclasses, lists, dicts of them) as JSON values, the dataclasses'
    fields as camelCase keys (dict keys are data and stay as they are) and times in ISO-8601:
    what the admin API answers and ``gateway admin`` prints."""
    if is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): as_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [as_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def task_record(task: Task) -> dict[str, Any]:
    """A task as the operator sees it: every column but the client's webhook URL (which may
    carry the client's own credentials)."""
    record: dict[str, Any] = as_json(task)
    record.pop("notifyHook")
    return record
