"""The home page's chart: one column per day, stacked by action, refunds taken off, scaled to
the day that cost most."""

from __future__ import annotations

from datetime import date

from gateway.console.charts import HEIGHT, cost_chart
from gateway.storage.usage import UsageRow

FIRST = date(2026, 11, 5)
LAST = date(2026, 12, 5)  # the day after the last column


def _row(day: int, action: str, charged: int, refunded: int = 0) -> UsageRow:
    return UsageRow(date(2026, 11, day), action, 1, charged, int(refunded > 0), refunded)


def test_days_stack_by_action_net_of_refunds_and_scale_to_the_dearest_day() -> None:
    chart = cost_chart(
        [
            _row(5, "mj_imagine", 300),
            _row(5, "mj_upscale", 100),
            _row(6, "mj_imagine", 300, refunded=100),
        ],
        FIRST,
        LAST,
    )
    assert chart.total_units == 600
    assert chart.top_units == 400
    assert [(a, units) for _s, a, units in chart.legend] == [
        ("mj_imagine", 500),
        ("mj_upscale", 100),
    ]
    first_day = [bar for bar in chart.bars if bar.title.startswith("2026-11-05")]
    assert [bar.height for bar in first_day] == [HEIGHT * 0.75, HEIGHT * 0.25]
    assert first_day[1].y + first_day[1].height == first_day[0].y  # stacked, no gap
    (second_day,) = [bar for bar in chart.bars if bar.title.startswith("2026-11-06")]
    assert second_day.height == HEIGHT * 0.5
    assert second_day.x > first_day[0].x
    assert len(chart.days) <= 7  # a few labels along the axis, not thirty


def test_a_quiet_month_draws_nothing() -> None:
    chart = cost_chart([], FIRST, LAST)
    assert (chart.bars, chart.legend, chart.total_units, chart.top_units) == ([], [], 0, 0)
