"""The dashboard's session figures on ClickHouse from one read of the range's sessions.

A session's rollup is made from its traces' merged parts when read
(``queries.sessions_near``), the costliest statement of the dashboard; its series
(ungrouped), distributions and top lists all follow from the same rows, so they are
read once and split here by the shared bucket rules (``store.metrics``) instead of
being rolled up again per figure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from threadline.server.model import TOP_ROWS
from threadline.server.store.metrics import MetricsRows, Range

# The columns ``fill`` reads, in order.
COLUMNS = "session_id, start_ns, end_ns, trace_count, error_count, cost_usd"


def fill(out: MetricsRows, found: Sequence[Sequence[Any]], span: Range, series: bool) -> None:
    """Set ``out``'s distributions' figures, top sessions and (``series``: ungrouped) its
    session rows from ``found``: every session active in ``span``, ``COLUMNS`` (and
    maybe more, which it ignores)."""
    o, w = span.origin, span.width
    by_buckets: Counter[tuple[int, int]] = Counter()
    errors: Counter[tuple[int, int]] = Counter()
    for _, start, end, traces, error_count, cost, *_ in found:
        out.session_figures.append((traces, end - start, cost))
        if series:
            buckets = ((max(start, o) - o + 999) // w, (min(end, span.end - 1) - o) // w)
            by_buckets[buckets] += 1
            errors[buckets] += error_count > 0
    if series:
        out.sessions = [
            (None, first, last, count, errors[(first, last)])
            for (first, last), count in by_buckets.items()
        ]
    # As SQL ranked them: by the figure, then by session id, both descending.
    top = [(s, start, t, e, c) for s, start, _, t, e, c, *_ in found]
    out.top_sessions_by_cost = sorted(
        (r for r in top if r[4] is not None and r[4] > 0), key=lambda r: (r[4], r[0]), reverse=True
    )[:TOP_ROWS]
    out.top_sessions_by_errors = sorted(
        (r for r in top if r[3] > 0), key=lambda r: (r[3], r[0]), reverse=True
    )[:TOP_ROWS]


def grouped(found: Sequence[Sequence[Any]], span: Range) -> list[tuple[Any, ...]]:
    """The session rows (group, first, last bucket, sessions, with an error) of
    ``found``: ``COLUMNS`` and each session's arrays of its traces' groups. A session
    counts once in each group of any of its traces."""
    o, w = span.origin, span.width
    counts: Counter[tuple[Any, int, int]] = Counter()
    errors: Counter[tuple[Any, int, int]] = Counter()
    for _, start, end, _, error_count, _, of_traces in found:
        first, last = (max(start, o) - o + 999) // w, (min(end, span.end - 1) - o) // w
        for group in dict.fromkeys(g for groups in of_traces for g in groups):
            counts[(group, first, last)] += 1
            errors[(group, first, last)] += error_count > 0
    return [(*cell, count, errors[cell]) for cell, count in counts.items()]
