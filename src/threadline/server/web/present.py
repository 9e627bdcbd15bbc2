"""How values look on a page: numbers, durations, money, payloads and chat messages.

Pure functions, registered as Jinja filters in ``render.py``. The raw number always
goes into a ``data-value`` attribute beside its formatted text, so tests (and users
copying values) can compare a page with its JSON twin exactly.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape

from threadline.server.conversation import pretty
from threadline.server.model import Score
from threadline.server.preview_text import readable

# Payloads above this are cut on the server (the full value stays in the JSON API):
# a browser should not have to lay out megabytes of text.
MAX_PAYLOAD_CHARS = 100_000
# Payloads above this many lines start collapsed behind a "show all" expander.
COLLAPSE_LINES = 24
# A span's detail shows this many of its attributes (and of its resource's), events
# and chat messages, each value cut at VALUE_CHARS: a span may carry a million
# attributes, and the page says how many more the JSON API has.
ITEMS_SHOWN = 200
EVENTS_SHOWN = 100
MESSAGES_SHOWN = 200
VALUE_CHARS = 10_000


def duration(ms: float | None) -> str:
    """Every duration on every page, one style: a number, a space, a unit; the two
    largest units past a minute (``850 ms``, ``2.50 s``, ``2 min 05 s``, ``1 h 02 min``)."""
    if ms is None:
        return "—"
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def duration_in_words(seconds: int) -> str:
    """A setting's whole seconds as a sentence says them (``10 minutes``, ``1 minute
    30 seconds``, ``2 hours``): ``duration`` is for columns of measured times, where
    ``10 min 00 s`` lines up with its neighbours but reads oddly inside a sentence."""
    parts = []
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count:,} {unit}{'' if count == 1 else 's'}")
    return " ".join(parts[:2]) or "0 seconds"


def cost(usd: float | None) -> str:
    if usd is None:
        return "—"  # unknown is not free
    if usd == 0:
        return "$0"
    if usd < 0.0001:
        return "<$0.0001"
    if usd < 1:
        return f"${usd:.4f}"
    return f"${usd:,.2f}"


def cost_axis(top: float) -> Callable[[float], str]:
    """How a cost chart's axis from 0 to ``top`` writes its ticks (0, the middle, the top):
    in dollars, all with the decimals the middle needs (``$0.50``/``$1.00``,
    ``$0.000025``/``$0.000050``). ``cost`` writes one amount: under $0.0001 it says
    ``<$0.0001``, and under $1 with four decimals, so an axis read ``$0.5000``/``$1.00``,
    or ``<$0.0001`` twice."""
    decimals = _decimals_of(top / 2, least=2)
    return lambda usd: "$0" if usd == 0 else f"${usd:,.{decimals}f}"


def percent_axis(top: float) -> Callable[[float], str]:
    """How a rate's axis from 0 to ``top`` (a share, 1 = 100 %) writes its ticks: in
    percent, all with the decimals the middle needs (``5%``/``10%``, ``12.5%``/``25.0%``),
    not each as one rate is (``5.0%`` beside ``10%``, or ``12%`` for 12.5 %)."""
    decimals = _decimals_of(top * 50, least=0)
    return lambda share: "0%" if share == 0 else f"{share * 100:.{decimals}f}%"


def _decimals_of(middle: float, least: int) -> int:
    """The decimals (at least ``least``) that write ``middle`` exactly."""
    return next(
        (d for d in range(least, 12) if abs(round(middle, d) - middle) <= middle * 1e-9), 12
    )


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:,}"


def tokens(count: int | None) -> str:
    """A token count; "—" for none, as for an unknown cost: totals are 0 when no span
    said how many tokens it used, and 0 tokens is never a real model call."""
    return "—" if not count else f"{count:,}"


def tokens_in_out(input_tokens: int | None, output_tokens: int | None) -> str:
    if not input_tokens and not output_tokens:
        return "—"
    return f"{input_tokens or 0:,} → {output_tokens or 0:,}"


def span_type_label(span_type: str) -> str:
    """What the tree and the span's detail both call a span's type: DEFAULT, the type
    of a span that is none of the others, reads as a plain span."""
    return "span" if span_type == "DEFAULT" else span_type


def payload_text(value: Any) -> tuple[str, bool]:
    """Pretty text of a payload, cut at MAX_PAYLOAD_CHARS; and whether it was cut."""
    text = pretty(value)
    if len(text) > MAX_PAYLOAD_CHARS:
        return text[:MAX_PAYLOAD_CHARS], True
    return text, False


def is_long(text: str) -> bool:
    return text.count("\n") >= COLLAPSE_LINES or len(text) > 3000


def preview(raw: str | None, limit: int = 140) -> str:
    """One line of a stored preview: the text said (``preview_text``, as the API gives
    it), its runs of white space made one space, cut at ``limit`` characters."""
    text = " ".join((readable(raw) or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def score_raw(score: Score) -> str:
    """A score's value as a ``data-value``: true/false, the number, or the label."""
    if isinstance(score.value, bool):
        return "true" if score.value else "false"
    if isinstance(score.value, float):
        return repr(score.value)
    return score.value


def score_text(score: Score) -> str:
    """A score's value as shown: a number without needless digits, or the label."""
    if isinstance(score.value, bool):
        return "good" if score.value else "bad"
    if isinstance(score.value, float):
        return f"{score.value:.4g}"
    return score.value


# Where a score came from, in a reader's words (the API keeps the stored ``source``):
# "ui" means nothing to someone who scored by hand on the page.
_SOURCE_WORDS = {
    "sdk": "SDK",
    "api": "API",
    "ui": "by hand",
    "end-user": "end user",
    "eval": "evaluator",
}


def score_source(source: str) -> str:
    return _SOURCE_WORDS.get(source, source)


def isolated(text: str) -> str:
    """``text`` between FSI and PDI (U+2068, U+2069), for plain text (a tooltip) where
    no element can isolate it: a bidirectional override in it ends with it."""
    return f"\u2068{text}\u2069"


def score_title(score: Score) -> str:
    """A chip's tooltip: what, who, when, and the comment."""
    who = score_source(score.source) + (f", {isolated(score.author)}" if score.author else "")
    when = score.created_at.strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"{isolated(score.name)}: {score_text(score)}", f"{who}, {when}"]
    if score.comment:
        lines += ["", isolated(score.comment)]
    return "\n".join(lines)


def first_items(mapping: dict[str, Any], limit: int = ITEMS_SHOWN) -> tuple[list[Any], int]:
    """The first ``limit`` items of ``mapping`` by key, and how many were left out."""
    items = sorted(mapping.items()) if len(mapping) <= limit else _smallest(mapping, limit)
    return items, len(mapping) - len(items)


def _smallest(mapping: dict[str, Any], limit: int) -> list[Any]:
    return heapq.nsmallest(limit, mapping.items(), key=lambda item: item[0])


def dotted_name(name: str) -> Markup:
    """An attribute's dotted name, escaped, that a narrow column may break after each dot
    (``threadline.`` / ``metadata.turn``) rather than inside a word (``meta`` / ``data``)."""
    return Markup("<wbr>").join(escape(part) for part in re.split(r"(?<=\.)", name))


def clip(text: str, limit: int = VALUE_CHARS) -> str:
    """``text`` cut at ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"
