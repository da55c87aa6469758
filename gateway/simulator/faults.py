"""Fault injection: ``[[sim:NAME]]`` prompt markers and the random draws of ``SimulatorFaults``.

Submit faults change the answer to one submit request; lifecycle faults change how one task
ends. A marker forces its fault; otherwise each fault fires with its configured probability,
drawn in the order the fields are declared. Markers never reach promptEn or finalPrompt.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from gateway.config import SimulatorFaults

_MARKER = re.compile(r"\[\[sim:([A-Za-z0-9_]+)(?:=([^\]]*))?\]\]")
_SPACES = re.compile(r"\s{2,}")


class SubmitFault(StrEnum):
    HTTP_401 = "http_401"
    HTTP_500 = "http_500"
    NOT_JSON = "not_json"
    DROP_CONNECTION = "drop_connection"
    SLOW = "slow"
    BANNED = "banned"
    NO_ACCOUNT = "no_account"
    QUEUE_FULL = "queue_full"
    SYSTEM_ERROR = "system_error"


class LifecycleFault(StrEnum):
    FAIL_BANNED = "fail_banned"
    FAIL_INVALID = "fail_invalid"
    STALL = "stall"
    FORGET = "forget"


_SUBMIT_FAULTS = tuple((fault, fault.value) for fault in SubmitFault)
_LIFECYCLE_FAULTS = tuple((fault, fault.value) for fault in LifecycleFault)
_LIFECYCLE_NAMES = frozenset(name for _, name in _LIFECYCLE_FAULTS)

Markers = Mapping[str, str | None]
"""Marker name (lower case) -> its ``=VALUE`` or None."""


def strip_markers(prompt: str) -> tuple[str, Markers]:
    """The prompt without its markers (spaces tidied), and the markers found in it."""
    markers: dict[str, str | None] = {}
    if "[[sim:" not in prompt:
        return prompt, markers
    for match in _MARKER.finditer(prompt):
        markers[match.group(1).lower()] = match.group(2)
    cleaned = _SPACES.sub(" ", _MARKER.sub("", prompt)).strip()
    return cleaned, markers


@dataclass(frozen=True, slots=True)
class SubmitFaults:
    """What to do to one submit answer: replace it (``answer``), delay it (``slow_s``), both or
    neither."""

    answer: SubmitFault | None = None
    slow_s: float | None = None


NO_SUBMIT_FAULTS = SubmitFaults()


def _fires(name: str, rate: float, markers: Markers, rng: random.Random) -> bool:
    return name in markers or (rate > 0 and rng.random() < rate)


def draw_submit_faults(
    faults: SimulatorFaults, markers: Markers, rng: random.Random
) -> SubmitFaults:
    """Draw the submit faults in declaration order; the first answer-changing one wins."""
    slow_s: float | None = None
    for fault, name in _SUBMIT_FAULTS:
        if not _fires(name, getattr(faults, name), markers, rng):
            continue
        if fault is SubmitFault.SLOW:
            slow_s = _marker_seconds(markers.get(name), faults.slow_answer_s)
            continue
        return SubmitFaults(fault, slow_s)
    return SubmitFaults(None, slow_s) if slow_s is not None else NO_SUBMIT_FAULTS


def forces_lifecycle_fault(markers: Markers) -> bool:
    return any(name in _LIFECYCLE_NAMES for name in markers)


def draw_lifecycle_fault(
    faults: SimulatorFaults, markers: Markers, rng: random.Random
) -> LifecycleFault | None:
    """At most one lifecycle fault per task: the first one that fires, in declaration order."""
    for fault, name in _LIFECYCLE_FAULTS:
        if _fires(name, getattr(faults, name), markers, rng):
            return fault
    return None


def _marker_seconds(value: str | None, default_s: float) -> float:
    if value is None:
        return default_s
    try:
        seconds = float(value)
    except ValueError:
        return default_s
    return seconds if seconds >= 0 else default_s
