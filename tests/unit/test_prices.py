"""Prices, pure: which priced action a button is, and what a request costs."""

from __future__ import annotations

import pytest

from gateway.billing.prices import PriceBook, price_action_for_custom_id

BOOK = PriceBook(
    base_units={"mj_imagine": 100_000, "mj_upscale": 50_000, "mj_odd": 3},
    mode_ratio_bp={"FAST": 10_000, "RELAX": 5_000, "TURBO": 20_000},
)


@pytest.mark.parametrize(
    ("action", "mode", "group_bp", "units"),
    [
        ("mj_imagine", "FAST", 10_000, 100_000),
        ("mj_imagine", "RELAX", 10_000, 50_000),
        ("mj_imagine", "TURBO", 10_000, 200_000),
        ("mj_imagine", "TURBO", 8_000, 160_000),
        ("mj_upscale", "RELAX", 7_500, 18_750),
        ("mj_odd", "RELAX", 10_000, 2),  # 1.5 rounds half up
        ("mj_odd", "RELAX", 9_999, 1),  # 1.49985 rounds down
        ("mj_imagine", "FAST", 0, 0),
    ],
)
def test_a_price_is_base_times_mode_times_group_in_integers(
    action: str, mode: str, group_bp: int, units: int
) -> None:
    assert BOOK.price_units(action, mode, group_bp) == units


def test_an_action_without_a_price_is_refused() -> None:
    with pytest.raises(KeyError):
        BOOK.price_units("mj_unpriced", "FAST", 10_000)


def test_a_mode_without_a_ratio_costs_the_base() -> None:
    assert PriceBook({"mj_imagine": 7}, {}).price_units("mj_imagine", "RELAX", 10_000) == 7


@pytest.mark.parametrize(
    ("custom_id", "price_action"),
    [
        ("MJ::JOB::upsample::1::abc", "mj_upscale"),
        ("MJ::JOB::upsample_v6_2x_subtle::1::abc::SOLO", "mj_upscale_hd"),
        ("MJ::JOB::variation::3::abc", "mj_variation"),
        ("MJ::JOB::low_variation::1::abc::SOLO", "mj_low_variation"),
        ("MJ::JOB::high_variation::1::abc::SOLO", "mj_high_variation"),
        ("MJ::JOB::reroll::0::abc::SOLO", "mj_reroll"),
        ("MJ::JOB::pan_left::1::abc::SOLO", "mj_pan"),
        ("MJ::Outpaint::50::1::abc::SOLO", "mj_zoom"),
        ("MJ::CustomZoom::abc", "mj_custom_zoom"),
        ("MJ::Inpaint::1::abc::SOLO", "mj_inpaint"),
        ("MJ::Job::PicReader::2", "mj_imagine"),
        ("MJ::Job::PromptAnalyzer::5", "mj_imagine"),
        ("MJ::Picread::Retry", "mj_describe"),
        ("MJ::BOOKMARK::abc", None),
        ("MJ::JOB::unknown::1::abc", None),
        ("not a button", None),
        ("", None),
    ],
)
def test_a_button_is_priced_by_what_it_starts(custom_id: str, price_action: str | None) -> None:
    assert price_action_for_custom_id(custom_id) == price_action


@pytest.mark.parametrize(
    ("quantity_bp", "mode", "units"),
    [
        (10_000, "FAST", 100_000),
        (2_500, "FAST", 25_000),  # a video batch of one: a quarter
        (5_000, "RELAX", 25_000),
        (30_000, "TURBO", 600_000),  # an upload of three images
    ],
)
def test_a_quantity_scales_the_price_with_one_rounding(
    quantity_bp: int, mode: str, units: int
) -> None:
    assert BOOK.price_units("mj_imagine", mode, 10_000, quantity_bp) == units
    assert BOOK.price_units("mj_odd", "FAST", 10_000, 5_000) == 2  # 1.5 once, not 3 x 0.5


@pytest.mark.parametrize(
    ("custom_id", "action"),
    [
        ("MJ::JOB::animate_high::1::0a1b::SOLO", "mj_video"),
        ("MJ::JOB::animate_low::1::0a1b::SOLO", "mj_video"),
        ("MJ::JOB::video_virtual_upscale::3::0a1b", "mj_video_upscale"),
        ("MJ::JOB::animate_sideways::1::0a1b::SOLO", None),
    ],
)
def test_video_buttons_have_their_prices(custom_id: str, action: str | None) -> None:
    assert price_action_for_custom_id(custom_id) == action
