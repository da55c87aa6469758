"""The home page's chart: what the last 30 days cost by day and by priced action, laid out here
as SVG rectangles (drawn by the browser from the page itself: no script, no outside service)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from gateway.storage.usage import UsageRow

WIDTH = 720
HEIGHT = 180
COLOURS = 8  # series classes in the stylesheet: .s0 ... .s7; more actions share the last


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    legend: list[tuple[int, str, int]]  # series, action, units over the period
    days: list[tuple[float, str]]  # x, label: a few days along the axis
    top_units: int  # what the top of the chart stands for
    total_units: int
    width: int = WIDTH
    height: int = HEIGHT


def cost_chart(rows: list[UsageRow], first: date, last: date) -> Chart:
    """Kept charges less refunds, stacked by action, one column per day in [first, last]."""
    days = [first + timedelta(days=n) for n in range((last - first).days)]
    by_action: dict[str, int] = {}
    cost: dict[tuple[date, str], int] = {}
    for row in rows:
        units = row.charged_units - row.refunded_units
        cost[row.day, row.action] = cost.get((row.day, row.action), 0) + units
        by_action[row.action] = by_action.get(row.action, 0) + units
    actions = sorted(by_action, key=lambda a: -by_action[a])
    series = {action: min(n, COLOURS - 1) for n, action in enumerate(actions)}
    per_day = {d: sum(max(0, cost.get((d, a), 0)) for a in actions) for d in days}
    top = max(per_day.values(), default=0) or 1
    step = WIDTH / max(1, len(days))
    bars = []
    for n, day in enumerate(days):
        y = float(HEIGHT)
        for action in actions:
            units = max(0, cost.get((day, action), 0))
            if not units:
                continue
            height = HEIGHT * units / top
            y -= height
            bars.append(
                Bar(
                    x=round(n * step + step * 0.1, 1),
                    y=round(y, 1),
                    width=round(step * 0.8, 1),
                    height=round(height, 1),
                    series=series[action],
                    title=f"{day.isoformat()} {action}: {units:,} units",
                )
            )
    ticks = [(round(n * step + step / 2, 1), d.strftime("%b %d")) for n, d in enumerate(days)]
    return Chart(
        bars=bars,
        legend=[(series[a], a, by_action[a]) for a in actions],
        days=ticks[:: max(1, len(ticks) // 6)],
        top_units=top if per_day and max(per_day.values()) else 0,
        total_units=sum(by_action.values()),
    )
