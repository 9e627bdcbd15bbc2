"""The numeric filters (``numeric_filters.py``) as conditions on the SQLite rollups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from threadline.server.model import NumericFilter
from threadline.server.numeric_filters import stored_value

# Field -> the rollup's column or expression (in the unit ``stored_value`` gives).
SESSION_COLUMNS: dict[str, str] = {
    "turns": "sessions.trace_count",
    "spans": "sessions.span_count",
    "tokens": "sessions.total_tokens",
    "cost": "sessions.cost_usd",
    "duration": "(sessions.end_ns - sessions.start_ns)",
    "errors": "sessions.error_count",
}
TRACE_COLUMNS: dict[str, str] = {
    "duration": "(traces.end_ns - traces.start_ns)",
    "tokens": "traces.total_tokens",
    "cost": "traces.cost_usd",
    "spans": "traces.span_count",
    "errors": "traces.error_count",
}


def add_conditions(
    where: list[str],
    args: list[Any],
    columns: dict[str, str],
    filters: Sequence[NumericFilter],
) -> None:
    """All of ``filters`` must hold (an unknown cost, NULL, holds for none)."""
    for item in filters:
        where.append(f"{columns[item.field]} {item.op} ?")
        args.append(stored_value(item))
