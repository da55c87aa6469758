"""Discord buttons: the set shown after each kind of result, and what pressing one does.

Pure functions and tables only. ``buttons_for`` gives the buttons a finished task carries;
``parse_custom_id`` reads a customId back into a ``FollowUp`` whose ``effect`` says which action
the new task gets, what it produces, how it is timed and whether a modal must confirm it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, auto

from gateway.simulator.protocol import TaskAction


class Output(Enum):
    """What a finished task shows: it decides the buttons and the image."""

    GRID = auto()
    SINGLE = auto()
    DESCRIBE = auto()
    SHORTEN = auto()
    SWAP = auto()
    VIDEO = auto()  # a batch of videos, each with a U button (video_virtual_upscale)
    VIDEO_SINGLE = auto()  # one video picked from a batch


class Profile(Enum):
    """How a task is timed: FULL has progress steps, the others jump to the end."""

    FULL = auto()
    QUICK = auto()
    TEXT = auto()
    SWAP = auto()
    VIDEO = auto()


class ModalRule(Enum):
    NEVER = auto()
    ALWAYS = auto()
    IF_REMIX = auto()


@dataclass(frozen=True, slots=True)
class Button:
    custom_id: str
    label: str = ""
    emoji: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "customId": self.custom_id,
            "emoji": self.emoji,
            "label": self.label,
            "type": 2,
            "style": 2,
        }


def grid_buttons(image_hash: str) -> list[Button]:
    """U1-U4, reroll, V1-V4: the row under a 2x2 grid."""
    ups = [Button(f"MJ::JOB::upsample::{n}::{image_hash}", f"U{n}") for n in range(1, 5)]
    reroll = Button(f"MJ::JOB::reroll::0::{image_hash}::SOLO", emoji="🔄")
    variations = [Button(f"MJ::JOB::variation::{n}::{image_hash}", f"V{n}") for n in range(1, 5)]
    return [*ups, reroll, *variations]


def upscale_buttons(image_hash: str) -> list[Button]:
    """The buttons under one upscaled image (Midjourney v6)."""
    h = image_hash
    return [
        Button(f"MJ::JOB::upsample_v6_2x_subtle::1::{h}::SOLO", "Upscale (Subtle)"),
        Button(f"MJ::JOB::upsample_v6_2x_creative::1::{h}::SOLO", "Upscale (Creative)"),
        Button(f"MJ::JOB::low_variation::1::{h}::SOLO", "Vary (Subtle)", "🪄"),
        Button(f"MJ::JOB::high_variation::1::{h}::SOLO", "Vary (Strong)", "🪄"),
        Button(f"MJ::Inpaint::1::{h}::SOLO", "Vary (Region)", "🖌️"),
        Button(f"MJ::Outpaint::50::1::{h}::SOLO", "Zoom Out 2x", "🔍"),
        Button(f"MJ::Outpaint::75::1::{h}::SOLO", "Zoom Out 1.5x", "🔍"),
        Button(f"MJ::CustomZoom::{h}", "Custom Zoom", "🔍"),
        Button(f"MJ::JOB::pan_left::1::{h}::SOLO", emoji="⬅️"),
        Button(f"MJ::JOB::pan_right::1::{h}::SOLO", emoji="➡️"),
        Button(f"MJ::JOB::pan_up::1::{h}::SOLO", emoji="⬆️"),
        Button(f"MJ::JOB::pan_down::1::{h}::SOLO", emoji="⬇️"),
        Button(f"MJ::BOOKMARK::{h}", emoji="❤️"),
        Button(f"MJ::JOB::animate_high::1::{h}::SOLO", "Animate (High motion)", "🎞️"),
        Button(f"MJ::JOB::animate_low::1::{h}::SOLO", "Animate (Low motion)", "🎞️"),
    ]


def video_buttons(image_hash: str, count: int) -> list[Button]:
    """U1..U<count> (each picks one video of the batch) and reroll."""
    ups = [
        Button(f"MJ::JOB::video_virtual_upscale::{n}::{image_hash}", f"U{n}")
        for n in range(1, count + 1)
    ]
    return [*ups, Button(f"MJ::JOB::reroll::0::{image_hash}::SOLO", emoji="🔄")]


DESCRIBE_BUTTONS = (
    *(Button(f"MJ::Job::PicReader::{n}", str(n)) for n in range(1, 5)),
    Button("MJ::Picread::Retry", emoji="🔄"),
    Button("MJ::Job::PicReader::all", "Imagine all", "🎉"),
)
SHORTEN_BUTTONS = tuple(Button(f"MJ::Job::PromptAnalyzer::{n}", str(n)) for n in range(1, 6))


def buttons_for(output: Output, image_hash: str, video_count: int = 0) -> list[Button]:
    if output is Output.VIDEO:
        return video_buttons(image_hash, video_count)
    if output is Output.GRID:
        return grid_buttons(image_hash)
    if output is Output.SINGLE:
        return upscale_buttons(image_hash)
    if output is Output.DESCRIBE:
        return list(DESCRIBE_BUTTONS)
    if output is Output.SHORTEN:
        return list(SHORTEN_BUTTONS)
    return []


class FollowUpKind(Enum):
    UPSCALE = auto()
    UPSCALE_HD = auto()
    VARIATION = auto()
    VARY_SUBTLE = auto()
    VARY_STRONG = auto()
    REROLL = auto()
    ZOOM_OUT = auto()
    CUSTOM_ZOOM = auto()
    PAN = auto()
    INPAINT = auto()
    PIC_READER = auto()
    PIC_READER_ALL = auto()
    PIC_RETRY = auto()
    PROMPT_ANALYZER = auto()
    BOOKMARK = auto()
    ANIMATE = auto()
    VIDEO_UPSCALE = auto()


@dataclass(frozen=True, slots=True)
class Effect:
    """What pressing a button starts. ``action`` None: the parent's own action (reroll)."""

    action: TaskAction | None
    output: Output
    profile: Profile
    modal: ModalRule


_GRID = (Output.GRID, Profile.FULL)
_EFFECTS: dict[FollowUpKind, Effect] = {
    FollowUpKind.UPSCALE: Effect(TaskAction.UPSCALE, Output.SINGLE, Profile.QUICK, ModalRule.NEVER),
    FollowUpKind.UPSCALE_HD: Effect(
        TaskAction.UPSCALE, Output.SINGLE, Profile.FULL, ModalRule.NEVER
    ),
    FollowUpKind.VARIATION: Effect(TaskAction.VARIATION, *_GRID, ModalRule.IF_REMIX),
    FollowUpKind.VARY_SUBTLE: Effect(TaskAction.VARIATION, *_GRID, ModalRule.IF_REMIX),
    FollowUpKind.VARY_STRONG: Effect(TaskAction.VARIATION, *_GRID, ModalRule.IF_REMIX),
    FollowUpKind.REROLL: Effect(None, *_GRID, ModalRule.IF_REMIX),
    FollowUpKind.ZOOM_OUT: Effect(TaskAction.ZOOM, *_GRID, ModalRule.NEVER),
    FollowUpKind.CUSTOM_ZOOM: Effect(TaskAction.ZOOM, *_GRID, ModalRule.ALWAYS),
    FollowUpKind.PAN: Effect(TaskAction.PAN, *_GRID, ModalRule.IF_REMIX),
    FollowUpKind.INPAINT: Effect(TaskAction.VARIATION, *_GRID, ModalRule.ALWAYS),
    FollowUpKind.PIC_READER: Effect(TaskAction.IMAGINE, *_GRID, ModalRule.ALWAYS),
    FollowUpKind.PIC_READER_ALL: Effect(TaskAction.IMAGINE, *_GRID, ModalRule.ALWAYS),
    FollowUpKind.PIC_RETRY: Effect(
        TaskAction.DESCRIBE, Output.DESCRIBE, Profile.TEXT, ModalRule.NEVER
    ),
    FollowUpKind.ANIMATE: Effect(TaskAction.VIDEO, Output.VIDEO, Profile.VIDEO, ModalRule.NEVER),
    FollowUpKind.VIDEO_UPSCALE: Effect(
        TaskAction.UPSCALE, Output.VIDEO_SINGLE, Profile.QUICK, ModalRule.NEVER
    ),
    FollowUpKind.PROMPT_ANALYZER: Effect(TaskAction.IMAGINE, *_GRID, ModalRule.ALWAYS),
}


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A parsed customId. ``index``: the tile (1-4) or the suggestion (1-5) it names, else 0."""

    kind: FollowUpKind
    index: int = 0

    @property
    def effect(self) -> Effect | None:
        """None for a bookmark, which creates no task."""
        return _EFFECTS.get(self.kind)

    def action_after(self, parent_action: TaskAction) -> TaskAction | None:
        effect = self.effect
        if effect is None:
            return None
        return effect.action or parent_action


_HASH = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_PATTERNS: tuple[tuple[re.Pattern[str], FollowUpKind], ...] = tuple(
    (re.compile(pattern.replace("HASH", _HASH)), kind)
    for pattern, kind in (
        (r"MJ::JOB::upsample::([1-4])::HASH", FollowUpKind.UPSCALE),
        (r"MJ::JOB::upsample_v\d+_2x_(?:subtle|creative)::1::HASH::SOLO", FollowUpKind.UPSCALE_HD),
        (r"MJ::JOB::variation::([1-4])::HASH", FollowUpKind.VARIATION),
        (r"MJ::JOB::low_variation::1::HASH::SOLO", FollowUpKind.VARY_SUBTLE),
        (r"MJ::JOB::high_variation::1::HASH::SOLO", FollowUpKind.VARY_STRONG),
        (r"MJ::JOB::reroll::0::HASH::SOLO", FollowUpKind.REROLL),
        (r"MJ::Outpaint::(?:50|75)::1::HASH::SOLO", FollowUpKind.ZOOM_OUT),
        (r"MJ::CustomZoom::HASH", FollowUpKind.CUSTOM_ZOOM),
        (r"MJ::JOB::pan_(?:left|right|up|down)::1::HASH::SOLO", FollowUpKind.PAN),
        (r"MJ::Inpaint::1::HASH::SOLO", FollowUpKind.INPAINT),
        (r"MJ::Job::PicReader::([1-4])", FollowUpKind.PIC_READER),
        (r"MJ::Job::PicReader::all", FollowUpKind.PIC_READER_ALL),
        (r"MJ::Picread::Retry", FollowUpKind.PIC_RETRY),
        (r"MJ::Job::PromptAnalyzer::([1-5])", FollowUpKind.PROMPT_ANALYZER),
        (r"MJ::BOOKMARK::HASH", FollowUpKind.BOOKMARK),
        (r"MJ::JOB::animate_(?:high|low)::1::HASH::SOLO", FollowUpKind.ANIMATE),
        (r"MJ::JOB::video_virtual_upscale::([1-4])::HASH", FollowUpKind.VIDEO_UPSCALE),
    )
)


def parse_custom_id(custom_id: str) -> FollowUp | None:
    """The follow-up a customId asks for, or None when no button of the simulator has that shape."""
    for pattern, kind in _PATTERNS:
        match = pattern.fullmatch(custom_id)
        if match:
            index = int(match.group(1)) if match.groups() else 0
            return FollowUp(kind, index)
    return None


def legacy_custom_id(action: TaskAction, index: int, image_hash: str) -> str:
    """The button ``/submit/change`` (UPSCALE, VARIATION or REROLL + index) stands for."""
    if action is TaskAction.UPSCALE:
        return f"MJ::JOB::upsample::{index}::{image_hash}"
    if action is TaskAction.VARIATION:
        return f"MJ::JOB::variation::{index}::{image_hash}"
    return f"MJ::JOB::reroll::0::{image_hash}::SOLO"
