"""The session page's context chart, laid out on the server as SVG (like ``charts.py``).

One bar per turn: its height the share of the model's context window the turn's fullest
LLM call filled, the part read from the provider's cache shaded darker, a dashed line at
the full window, and a red mark over each turn where earlier messages were dropped or
summarised (``context_growth``). The scale's top is the first of SCALE_TOPS at or above
the fullest turn, so a conversation far from its limit (most are: a few percent of a
128,000-token window) still shows how its context grows; the full window's line is drawn
once the scale reaches it, and a turn past the window genai-prices gives sets the top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from threadline.server.context_growth import TurnContext

WIDTH = 720
HEIGHT = 160
LEFT = 40  # room for the y-axis labels
BOTTOM = 18  # room for the turn numbers
TOP = 12  # room for the dropped-history marks
_MAX_BAR = 28.0
SCALE_TOPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(frozen=True, slots=True)
class ContextBar:
    turn: TurnContext
    x: float
    width: float
    y: float  # top of the bar
    height: float
    cached_y: float
    cached_height: float
    title: str


@dataclass(frozen=True, slots=True)
class ContextChart:
    bars: list[ContextBar]
    full_y: float | None  # the line of a full window, when the scale reaches it
    top_y: float
    top_label: str  # the scale's top, as a percentage
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM


def layout(turns: Sequence[TurnContext]) -> ContextChart | None:
    """The chart of ``turns``; None when no turn carries a token count."""
    if not any(t.input_tokens for t in turns):
        return None
    peak = max((t.use for t in turns if t.use is not None), default=1.0)
    top = next((scale for scale in SCALE_TOPS if scale >= peak), peak)
    plot = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / len(turns)
    width = min(slot * 0.7, _MAX_BAR)
    bottom = HEIGHT - BOTTOM
    bars = []
    for index, turn in enumerate(turns):
        height = (turn.use or 0.0) / top * plot
        cached = height * (turn.cached_share or 0.0)
        bars.append(
            ContextBar(
                turn=turn,
                x=LEFT + index * slot + (slot - width) / 2,
                width=width,
                y=bottom - height,
                height=height,
                cached_y=bottom - cached,
                cached_height=cached,
                title=describe(turn),
            )
        )
    full_y = bottom - plot / top if top >= 1.0 else None
    return ContextChart(bars, full_y=full_y, top_y=bottom - plot, top_label=f"{top:.0%}")


def describe(turn: TurnContext) -> str:
    """A turn's figures in words (the bar's tooltip)."""
    if not turn.input_tokens:
        said = "no token count"
    elif turn.context_window is None:
        said = f"{turn.input_tokens:,} input tokens, context window unknown ({turn.model})"
    else:
        said = (
            f"{turn.input_tokens:,} of {turn.context_window:,} tokens ({turn.use:.0%})"
            f" of {turn.model}"
        )
    if turn.cached_share is not None:
        said += f", {turn.cached_share:.0%} cached"
    if turn.history_dropped:
        said += "; earlier messages dropped or summarised"
    return f"Turn {turn.turn}: {said}"
