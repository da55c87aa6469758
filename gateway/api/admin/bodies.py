"""The admin API's request bodies and the value types they share; unknown fields refused."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar.params import QueryParameter

from gateway import admin
from gateway.admin import MAX_UNITS, ChannelChanges
from gateway.domain import KeySettings

DEFAULT_PAGE = 100

Units = Annotated[int, msgspec.Meta(ge=-MAX_UNITS, le=MAX_UNITS)]
PositiveUnits = Annotated[int, msgspec.Meta(ge=0, le=MAX_UNITS)]
Count = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
# Text that a PostgreSQL column can store: no NUL.
Text = Annotated[str, msgspec.Meta(max_length=500, pattern=r"^[^\x00]*$")]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"^[^\x00]*$")]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[^\x00]*$")]
Page = Annotated[int, QueryParameter(ge=1, le=admin.MAX_PAGE)]
Word = Annotated[str, msgspec.Meta(max_length=64)]
Words = Annotated[list[Word], msgspec.Meta(max_length=64)]  # actions, modes, bot types, networks


class Body(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    pass


class CreditBody(Body):
    units: Units
    reason: Reason
    reference: Reference | None = None


class KeyLimitBody(Body):
    units: PositiveUnits | None
    reason: Reason = "key limit set"


class PriceBody(Body):
    units: PositiveUnits


class RatioBody(Body):
    ratio_bp: Annotated[int, msgspec.Meta(ge=0, le=10**9)]
    description: Text | None = None


class UserGroupBody(Body):
    group: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class RateLimitsBody(Body):
    """Both limits, replaced together: an absent or null one is no limit of that kind."""

    requests_per_minute: Count | None = None
    max_open_tasks: Count | None = None


class NewUserBody(Body):
    name: Name
    balance_units: PositiveUnits = 0
    group: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "default"


class NewKeyBody(Body):
    name: Text = ""
    limit_units: PositiveUnits | None = None  # what the key may spend; None = only the balance
    expires_at: datetime | None = None
    allowed_actions: Words | None = None
    allowed_cidrs: Words | None = None
    requests_per_minute: Count | None = None
    max_open_tasks: Count | None = None

    def settings(self) -> KeySettings:
        return KeySettings(
            name=self.name,
            quota_units=self.limit_units,
            expires_at=self.expires_at,
            allowed_actions=self.allowed_actions,
            allowed_cidrs=self.allowed_cidrs,
            requests_per_minute=self.requests_per_minute,
            max_open_tasks=self.max_open_tasks,
        )


class ChannelBody(Body):
    """A channel's settings. On create, ``name`` and ``baseUrl`` are required; on edit, every
    field is optional and an absent one is left as it is (``actions: null`` and ``maxInFlight:
    null`` lift those limits, ``secret: ""`` removes the secret)."""

    name: Name | None = None
    base_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    secret: Annotated[str, msgspec.Meta(max_length=1024, pattern=r"^[\x21-\x7e]*$")] | None = None
    weight: int | None = None
    priority: int | None = None
    modes: Words | None = None
    actions: Words | msgspec.UnsetType | None = msgspec.UNSET
    bot_types: Words | None = None
    max_in_flight: int | msgspec.UnsetType | None = msgspec.UNSET
    enabled: bool | None = None
    flavour: Literal["plus", "open-source", "trueai"] | None = None

    def changes(self) -> ChannelChanges:
        return ChannelChanges(
            name=self.name,
            base_url=self.base_url,
            secret=self.secret,
            weight=self.weight,
            priority=self.priority,
            modes=self.modes,
            actions=self.actions if isinstance(self.actions, list) else None,
            clear_actions=self.actions is None,
            bot_types=self.bot_types,
            max_in_flight=self.max_in_flight if isinstance(self.max_in_flight, int) else None,
            clear_max_in_flight=self.max_in_flight is None,
            enabled=self.enabled,
            flavour=self.flavour,
        )
