"""The numeric filters (``numeric_filters.py``) as conditions on the ClickHouse rollups
(the latest-session and latest-trace rows of ``queries.py``)."""

from __future__ import annotations

from collections.abc import Sequence

from threadline.server.model import NumericFilter
from threadline.server.numeric_filters import stored_value
from threadline.server.store.clickhouse.queries import Filters

# Field -> the rollup's column or expression (in the unit ``stored_value`` gives).
SESSION_COLUMNS: dict[str, str] = {
    "turns": "trace_count",
    "spans": "span_count",
    "tokens": "total_tokens",
    "cost": "cost_usd",
    "duration": "(end_ns - start_ns)",
    "errors": "error_count",
}
TRACE_COLUMNS: dict[str, str] = {
    "duration": "(end_ns - start_ns)",
    "tokens": "total_tokens",
    "cost": "cost_usd",
    "spans": "span_count",
    "errors": "error_count",
}


def add_conditions(f: Filters, columns: dict[str, str], filters: Sequence[NumericFilter]) -> None:
    """All of ``filters`` must hold (an unknown cost, NULL, holds for none)."""
    for item in filters:
        f.add(f"{columns[item.field]} {item.op} {f.param(stored_value(item))}")
