"""The session page's context chart, laid out on the server as SVG (like ``charts.py``).

One bar per turn: its height the share of the model's context window the turn's fullest
LLM call filled, the part read from the provider's cache shaded darker, a dashed line at
the full window, and a red mark over each turn where earlier messages were dropped or
summarised (``context_growth``). The scale reaches at least the full window, more when
a turn went past what genai-prices gives as the window.
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
    full_y: float  # the line of a full window
    top_label: str  # the scale's top, as a percentage
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM


def layout(turns: Sequence[TurnContext]) -> ContextChart | None:
    """The chart of ``turns``; None when no turn carries a token count."""
    if not any(t.input_tokens for t in turns):
        return None
    top = max([1.0, *(t.use for t in turns if t.use is not None)])
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
    return ContextChart(bars, full_y=bottom - plot / top, top_label=f"{top:.0%}")


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
