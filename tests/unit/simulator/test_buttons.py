"""Button sets and what each customId does."""

from __future__ import annotations

import pytest

from gateway.simulator.buttons import (
    DESCRIBE_BUTTONS,
    SHORTEN_BUTTONS,
    FollowUpKind,
    ModalRule,
    Output,
    Profile,
    buttons_for,
    grid_buttons,
    legacy_custom_id,
    parse_custom_id,
    upscale_buttons,
)
from gateway.simulator.protocol import TaskAction

HASH = "3dbbd469-36af-4a0f-8f02-df6c579e7011"


def test_grid_buttons_are_u_reroll_v_in_order() -> None:
    buttons = grid_buttons(HASH)
    assert [b.custom_id for b in buttons] == [
        *(f"MJ::JOB::upsample::{n}::{HASH}" for n in range(1, 5)),
        f"MJ::JOB::reroll::0::{HASH}::SOLO",
        *(f"MJ::JOB::variation::{n}::{HASH}" for n in range(1, 5)),
    ]
    assert [b.label for b in buttons] == ["U1", "U2", "U3", "U4", "", "V1", "V2", "V3", "V4"]
    assert buttons[4].emoji == "🔄"


def test_upscale_buttons_carry_the_hash_and_solo_suffix() -> None:
    ids = [b.custom_id for b in upscale_buttons(HASH)]
    assert f"MJ::JOB::upsample_v6_2x_subtle::1::{HASH}::SOLO" in ids
    assert f"MJ::JOB::upsample_v6_2x_creative::1::{HASH}::SOLO" in ids
    assert f"MJ::Outpaint::50::1::{HASH}::SOLO" in ids
    assert f"MJ::Outpaint::75::1::{HASH}::SOLO" in ids
    assert f"MJ::CustomZoom::{HASH}" in ids
    assert f"MJ::Inpaint::1::{HASH}::SOLO" in ids
    assert f"MJ::BOOKMARK::{HASH}" in ids
    assert {f"MJ::JOB::pan_{d}::1::{HASH}::SOLO" for d in ("left", "right", "up", "down")} <= set(
        ids
    )
    labels = {b.label for b in upscale_buttons(HASH)}
    assert {"Vary (Subtle)", "Vary (Strong)", "Vary (Region)", "Zoom Out 2x", "Custom Zoom"} <= (
        labels
    )


def test_button_json_shape() -> None:
    assert grid_buttons(HASH)[0].to_json() == {
        "customId": f"MJ::JOB::upsample::1::{HASH}",
        "emoji": "",
        "label": "U1",
        "type": 2,
        "style": 2,
    }


def test_buttons_for_each_output() -> None:
    assert len(buttons_for(Output.GRID, HASH)) == 9
    assert [b.custom_id for b in buttons_for(Output.DESCRIBE, HASH)] == [
        b.custom_id for b in DESCRIBE_BUTTONS
    ]
    assert [b.custom_id for b in buttons_for(Output.SHORTEN, HASH)] == [
        f"MJ::Job::PromptAnalyzer::{n}" for n in range(1, 6)
    ]
    assert len(SHORTEN_BUTTONS) == 5
    assert buttons_for(Output.SWAP, HASH) == []


@pytest.mark.parametrize(
    ("custom_id", "kind", "index", "action", "modal"),
    [
        (f"MJ::JOB::upsample::3::{HASH}", FollowUpKind.UPSCALE, 3, "UPSCALE", ModalRule.NEVER),
        (
            f"MJ::JOB::upsample_v6_2x_creative::1::{HASH}::SOLO",
            FollowUpKind.UPSCALE_HD,
            0,
            "UPSCALE",
            ModalRule.NEVER,
        ),
        (
            f"MJ::JOB::variation::2::{HASH}",
            FollowUpKind.VARIATION,
            2,
            "VARIATION",
            ModalRule.IF_REMIX,
        ),
        (
            f"MJ::JOB::low_variation::1::{HASH}::SOLO",
            FollowUpKind.VARY_SUBTLE,
            0,
            "VARIATION",
            ModalRule.IF_REMIX,
        ),
        (
            f"MJ::JOB::high_variation::1::{HASH}::SOLO",
            FollowUpKind.VARY_STRONG,
            0,
            "VARIATION",
            ModalRule.IF_REMIX,
        ),
        (f"MJ::Outpaint::50::1::{HASH}::SOLO", FollowUpKind.ZOOM_OUT, 0, "ZOOM", ModalRule.NEVER),
        (f"MJ::CustomZoom::{HASH}", FollowUpKind.CUSTOM_ZOOM, 0, "ZOOM", ModalRule.ALWAYS),
        (f"MJ::JOB::pan_up::1::{HASH}::SOLO", FollowUpKind.PAN, 0, "PAN", ModalRule.IF_REMIX),
        (f"MJ::Inpaint::1::{HASH}::SOLO", FollowUpKind.INPAINT, 0, "VARIATION", ModalRule.ALWAYS),
        ("MJ::Job::PicReader::4", FollowUpKind.PIC_READER, 4, "IMAGINE", ModalRule.ALWAYS),
        ("MJ::Job::PicReader::all", FollowUpKind.PIC_READER_ALL, 0, "IMAGINE", ModalRule.ALWAYS),
        ("MJ::Picread::Retry", FollowUpKind.PIC_RETRY, 0, "DESCRIBE", ModalRule.NEVER),
        (
            "MJ::Job::PromptAnalyzer::5",
            FollowUpKind.PROMPT_ANALYZER,
            5,
            "IMAGINE",
            ModalRule.ALWAYS,
        ),
    ],
)
def test_custom_id_to_follow_up(
    custom_id: str, kind: FollowUpKind, index: int, action: str, modal: ModalRule
) -> None:
    follow_up = parse_custom_id(custom_id)
    assert follow_up is not None
    assert (follow_up.kind, follow_up.index) == (kind, index)
    effect = follow_up.effect
    assert effect is not None
    assert follow_up.action_after(TaskAction.BLEND) == TaskAction(action)
    assert effect.modal is modal


def test_reroll_keeps_the_parent_action() -> None:
    follow_up = parse_custom_id(f"MJ::JOB::reroll::0::{HASH}::SOLO")
    assert follow_up is not None
    assert follow_up.action_after(TaskAction.BLEND) is TaskAction.BLEND
    assert follow_up.action_after(TaskAction.IMAGINE) is TaskAction.IMAGINE


def test_bookmark_creates_no_task() -> None:
    follow_up = parse_custom_id(f"MJ::BOOKMARK::{HASH}")
    assert follow_up is not None
    assert follow_up.effect is None
    assert follow_up.action_after(TaskAction.UPSCALE) is None


def test_outputs_and_timing_of_upscales() -> None:
    plain = parse_custom_id(f"MJ::JOB::upsample::1::{HASH}")
    hd = parse_custom_id(f"MJ::JOB::upsample_v6_2x_subtle::1::{HASH}::SOLO")
    assert plain is not None
    assert plain.effect is not None
    assert hd is not None
    assert hd.effect is not None
    assert (plain.effect.output, plain.effect.profile) == (Output.SINGLE, Profile.QUICK)
    assert (hd.effect.output, hd.effect.profile) == (Output.SINGLE, Profile.FULL)


@pytest.mark.parametrize(
    "custom_id",
    [
        f"MJ::JOB::upsample::5::{HASH}",
        f"MJ::JOB::upsample::1::{HASH}::SOLO",
        "MJ::JOB::upsample::1::not-a-hash",
        "MJ::Job::PicReader::5",
        "MJ::Job::PromptAnalyzer::6",
        "",
        "U1",
    ],
)
def test_unknown_custom_ids(custom_id: str) -> None:
    assert parse_custom_id(custom_id) is None


def test_legacy_change_maps_to_the_same_buttons() -> None:
    grid = {b.custom_id for b in grid_buttons(HASH)}
    assert legacy_custom_id(TaskAction.UPSCALE, 2, HASH) == f"MJ::JOB::upsample::2::{HASH}"
    assert legacy_custom_id(TaskAction.VARIATION, 4, HASH) == f"MJ::JOB::variation::4::{HASH}"
    assert legacy_custom_id(TaskAction.REROLL, 0, HASH) in grid
