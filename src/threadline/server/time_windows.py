"""The time window a list shows when its request names none.

The Sessions, Traces and Users lists (the JSON API and the web UI alike) show what was
active in a recent window unless the request asks for another one, or for all time.
On SQLite a window only narrows what is shown; on ClickHouse it is also what keeps a
list's cost from growing with the project (``store/clickhouse/recent_sessions.py``),
which is why all time is a choice, not the default. Seven days: the Sessions list's
first page costs the same for 24 hours, 7 days or 30 days on a busy project
(docs/benchmarks.md), and a week still shows a quiet project's latest sessions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

Window = Literal["15m", "1h", "24h", "7d", "30d", "all"]

WINDOWS: dict[str, timedelta | None] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
DEFAULT_WINDOW: Window = "7d"
# The windows a chart's range may be given as (a chart needs a start: not all time).
RangeWindow = Literal["15m", "1h", "24h", "7d", "30d"]


def bounds(
    window: str, start: datetime | None, end: datetime | None, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """(start, end) of a list: the times asked for when there are any, else ``window``
    back from now (``all``: unbounded)."""
    if start is not None or end is not None:
        return start, end
    span = WINDOWS[window]
    if span is None:
        return None, None
    return (now or datetime.now(UTC)) - span, None
