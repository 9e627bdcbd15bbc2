"""Bar charts laid out on the server, drawn by the template as inline SVG.

No chart library: a bar chart of at most a thousand buckets is a few rectangles, and
laying them out here keeps the page working without JavaScript, under the CSP, and
with the same numbers as ``/api/v1/metrics`` (each bar carries its value in
``data-value``). Each bar is a link (to the list filtered to its bucket) with a
``<title>`` tooltip. Grouped series are stacked when they add up (counts, amounts)
and set side by side when they do not (rates, averages).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

# The SVG's own coordinates, about the size of a chart's card on a laptop (three to a
# row) and on a phone (one): it scales to its box (viewBox) without distortion.
WIDTH = 360
HEIGHT = 180
LEFT = 44  # room for the y-axis labels, at least
AXIS_CHAR = 6  # about the width of a y-axis label's character (10 px text), in SVG units
BOTTOM = 20  # room for the x-axis labels
TOP = 8
ZERO_BAR = 1.5  # the height of a rate's or an average's bar of 0, in the SVG's units
PALETTE = (
    "#4f6bed",
    "#e07a2f",
    "#2a9d8f",
    "#c44569",
    "#8e6cc9",
    "#7a8b2c",
    "#3d8bd4",
    "#b5651d",
    "#5c6770",
    "#d4a017",
)
# The colour of what is added up as "the rest" (other models): the palette's grey.
REST_COLOR = "#5c6770"


@dataclass(slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    value: float
    tooltip: str
    href: str


@dataclass(slots=True)
class Tick:
    position: float
    label: str


@dataclass(slots=True)
class Chart:
    key: str
    title: str
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (label, color)
    empty: bool = True
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM


@dataclass(slots=True)
class Series:
    group: str | None
    values: Sequence[float | None]
    # The series' own colour, for one that must look the same in several charts; else
    # the palette's, by the series' place in its chart.
    color: str | None = None


def bar_chart(
    key: str,
    title: str,
    buckets: Sequence[datetime],
    series: Sequence[Series],
    *,
    stacked: bool,
    fmt: Callable[[float], str],
    bucket_label: Callable[[datetime], str],
    href: Callable[[datetime, str | None], str],
    grouped: bool,
    axis_fmt: Callable[[float], Callable[[float], str]] | None = None,
    counts: bool = False,
) -> Chart:
    """One chart of ``series`` over ``buckets``; ``href(bucket, group)`` is a bar's link.
    ``fmt`` writes a bar's value; ``axis_fmt(top)``, when given, the axis' ticks, which
    may want one style for all three (a cost's decimals). An axis of ``counts`` has
    whole ticks (no half a session)."""
    chart = Chart(key=key, title=title)
    if stacked:
        tops = [sum(v or 0.0 for v in (s.values[i] for s in series)) for i in range(len(buckets))]
    else:
        tops = [max((s.values[i] or 0.0 for s in series), default=0.0) for i in range(len(buckets))]
    high = (_even_ceiling if counts else _nice_ceiling)(max(tops, default=0.0))
    tick = axis_fmt(high) if axis_fmt else fmt
    labels = [tick(high * f) for f in (0.0, 0.5, 1.0)]
    # The plot starts where the longest y-axis label ends ("$0.000050" is not cut).
    chart.left = max(LEFT, AXIS_CHAR * max(len(label) for label in labels) + 8)
    n = max(len(buckets), 1)
    plot_w = WIDTH - chart.left - 4
    plot_h = chart.baseline - TOP
    slot = plot_w / n
    gap = min(2.0, slot * 0.15)
    # A count or a sum of 0 is nothing to show; a rate or an average of 0 (every score
    # false, no error) is a figure, and None is what has nothing to average.
    values = [v for s in series for v in s.values]
    chart.empty = not any(values) if stacked else all(v is None for v in values)
    colors = [one.color or PALETTE[k % len(PALETTE)] for k, one in enumerate(series)]
    for one, color in zip(series, colors, strict=True):
        if grouped:
            chart.legend.append((_group_label(one.group), color))
    below = [0.0] * len(buckets)
    for i, start in enumerate(buckets):
        x0 = chart.left + i * slot + gap / 2
        width = slot - gap
        for k, one in enumerate(series):
            value = one.values[i]
            if value is None:
                continue
            color = colors[k]
            height = plot_h * value / high if high else 0.0
            if not stacked:
                height = max(height, ZERO_BAR)  # an average of 0 shows, and has a tooltip
            label = f"{bucket_label(start)}: {fmt(value)}"
            if grouped:
                label = f"{_group_label(one.group)} · {label}"
            if stacked:
                y = chart.baseline - below[i] - height
                below[i] += height
                x, w = x0, width
            else:
                w = width / len(series)
                x, y = x0 + k * w, chart.baseline - height
            chart.bars.append(
                Bar(
                    x=round(x, 2),
                    y=round(y, 2),
                    width=round(max(w, 0.5), 2),
                    height=round(max(height, 0.0), 2),
                    color=color,
                    value=value,
                    tooltip=label,
                    href=href(start, one.group if grouped else None),
                )
            )
    chart.y_ticks = [
        Tick(round(chart.baseline - plot_h * f, 2), label)
        for f, label in zip((0.0, 0.5, 1.0), labels, strict=True)
    ]
    every = max(1, math.ceil(n / 4))
    chart.x_ticks = [
        Tick(round(chart.left + (i + 0.5) * slot, 2), bucket_label(b))
        for i, b in enumerate(buckets)
        # Four labels at most, none cut by the right edge.
        if i % every == 0 and chart.left + (i + 0.5) * slot < WIDTH - 28
    ]
    return chart


def _group_label(group: str | None) -> str:
    return "(none)" if group is None else group


def _nice_ceiling(value: float) -> float:
    """The y-axis top: 1, 2, 2.5 or 5 times a power of ten, at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10.0 * power


def _even_ceiling(value: float) -> float:
    """A count axis' top: an even number, so that its middle tick is a whole one (2, 4,
    6, 8 or 10 up to ten, else 1, 2, 3, 4, 5, 6 or 8 times a power of ten)."""
    if value <= 2:
        return 2.0
    power = 10 ** math.floor(math.log10(value))
    steps = (2, 4, 6, 8) if power == 1 else (1, 2, 3, 4, 5, 6, 8)
    return float(next((s * power for s in steps if value <= s * power), 10 * power))
