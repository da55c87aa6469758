"""What an operator does: users, keys, channels, prices and groups, money, and the searches
of tasks and the ledger. Each input is checked here, so the admin API and the ``gateway admin``
CLI (which talks to the database directly) refuse the same things with the same words; and
``as_json`` is the one shape of every view, for both.

One module per domain; this package is their one door, so callers write ``admin.create_user``.
"""

from __future__ import annotations

from gateway.admin.channels import (
    BASE_URL,
    BOT_TYPES,
    CHANNEL_NAME,
    ChannelChanges,
    add_channel,
    channel_id_by_name,
    channel_settings,
    channel_view,
    edit_channel,
    list_channels,
    reseal_secrets,
    test_channel,
)
from gateway.admin.money import (
    GROUP_NAME,
    MAX_UNITS,
    PRICE_ACTION,
    Credit,
    PriceList,
    credit,
    price_list,
    set_group,
    set_key_limit,
    set_mode_ratio,
    set_price,
)
from gateway.admin.records import (
    LEDGER_KINDS,
    TASK_STATUSES,
    LedgerSearch,
    TaskSearch,
    ledger,
    search_tasks,
)
from gateway.admin.users import (
    MAX_RATE_LIMIT,
    IssuedKey,
    create_user,
    issue_key,
    list_keys,
    list_users,
    revoke_key,
    set_key_rate_limits,
    set_user_enabled,
    set_user_group,
    set_user_limits,
    user,
    user_id_by_name,
)
from gateway.admin.views import MAX_PAGE, as_json, epoch_ms, instant, page_size, task_record
from gateway.domain import MODES

__all__ = [
    "BASE_URL",
    "BOT_TYPES",
    "CHANNEL_NAME",
    "GROUP_NAME",
    "LEDGER_KINDS",
    "MAX_PAGE",
    "MAX_RATE_LIMIT",
    "MAX_UNITS",
    "MODES",
    "PRICE_ACTION",
    "TASK_STATUSES",
    "ChannelChanges",
    "Credit",
    "IssuedKey",
    "LedgerSearch",
    "PriceList",
    "TaskSearch",
    "add_channel",
    "as_json",
    "channel_id_by_name",
    "channel_settings",
    "channel_view",
    "create_user",
    "credit",
    "edit_channel",
    "epoch_ms",
    "instant",
    "issue_key",
    "ledger",
    "list_channels",
    "list_keys",
    "list_users",
    "page_size",
    "price_list",
    "reseal_secrets",
    "revoke_key",
    "search_tasks",
    "set_group",
    "set_key_limit",
    "set_key_rate_limits",
    "set_mode_ratio",
    "set_price",
    "set_user_enabled",
    "set_user_group",
    "set_user_limits",
    "task_record",
    "test_channel",
    "user",
    "user_id_by_name",
]
