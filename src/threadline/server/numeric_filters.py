"""Numeric filters on the totals of sessions and traces: ``turns>3``, ``cost<=0.5``.

One set of rules for the API, the export, the bulk delete and the web UI's filter bar:
what a field is called, what it means, and what unit its value is in. Each store turns
a field into a column of its rollups (``SESSION_FIELDS``, ``TRACE_FIELDS``), so the
filters read rollups maintained on write, never spans.
"""

from __future__ import annotations

import math
import re
from typing import cast

from threadline.server.errors import BadRequest
from threadline.server.model import NumericFilter, NumericOp

# Field -> (what it is, for help texts and errors).
SESSION_FIELDS: dict[str, str] = {
    "turns": "traces in the session",
    "spans": "spans in the session",
    "tokens": "total tokens",
    "cost": "cost in USD (sessions of unknown cost match no cost filter)",
    "duration": "seconds from the first start to the last end",
    "errors": "failed traces",
}
TRACE_FIELDS: dict[str, str] = {
    "duration": "seconds from start to end",
    "tokens": "total tokens",
    "cost": "cost in USD (traces of unknown cost match no cost filter)",
    "spans": "spans in the trace",
    "errors": "failed spans",
}

_FILTER = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<|=)\s*(\S+?)\s*$")
_NS_PER_SECOND = 1_000_000_000
# Durations are kept in nanoseconds, in 64-bit integers: a bound past them is refused
# rather than handed to a store that cannot bind it.
MAX_DURATION_SECONDS = (2**63 - 1) // _NS_PER_SECOND


def parse(texts: list[str], fields: dict[str, str]) -> list[NumericFilter]:
    """``["turns>3", "cost<=0.5"]`` into filters, or BadRequest naming what is wrong."""
    parsed = []
    for text in texts:
        match = _FILTER.match(text)
        if match is None:
            raise BadRequest(f"filter {text!r} is not 'field op number' (op: > >= < <= =)")
        field, op, raw = match.groups()
        if field not in fields:
            raise BadRequest(f"filter {text!r}: no field {field!r}; fields: {', '.join(fields)}")
        try:
            value = float(raw.removesuffix("s") if field == "duration" else raw)
        except ValueError:
            raise BadRequest(f"filter {text!r}: {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise BadRequest(f"filter {text!r}: {raw!r} is not a finite number")
        if field == "duration" and abs(value) > MAX_DURATION_SECONDS:
            raise BadRequest(
                f"filter {text!r}: a duration is at most {MAX_DURATION_SECONDS} seconds"
            )
        parsed.append(NumericFilter(field=field, op=cast(NumericOp, op), value=value))
    return parsed


def text(item: NumericFilter) -> str:
    """A filter as ``parse`` reads it (URLs, the filter bar)."""
    value = int(item.value) if item.value.is_integer() else item.value
    return f"{item.field}{item.op}{value}"


def stored_value(item: NumericFilter) -> float | int:
    """The value in the unit rollups store it in: durations in nanoseconds."""
    if item.field == "duration":
        return round(item.value * _NS_PER_SECOND)
    return item.value
