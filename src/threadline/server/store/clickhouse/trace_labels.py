"""The traces that may meet a filter, found by the filter's values (migration 0020).

A trace's merged user, tags and metadata are each the value some span of it named, so
the traces ``trace_labels`` lists for a filter's values hold every trace that meets the
filter (and maybe some that do not: a span named the user, the root another). A read
narrows the trace parts it merges to those traces, then checks the filter on the merged
rows as before: the same rows, without merging the window's other traces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from threadline.server.model import MetricsQuery
from threadline.server.store.clickhouse import queries
from threadline.server.store.clickhouse.queries import Filters

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

USER, TAG, METADATA = 1, 2, 3
# Up to this many traces a filtered read names by id: found once, instead of by the
# subquery that every statement of the read would run again (a scan of the window's
# trace times each).
FEW_TRACES = 5000


def candidates(f: Filters, query: MetricsQuery) -> str | None:
    """A condition on trace parts (by trace id: all of a trace's parts or none) keeping
    the traces that may meet ``query``'s user, tag and metadata filters; None when it
    has none."""
    return labelled(f, query.user_id, query.tag, query.metadata)


def labelled(
    f: Filters, user_id: str | None, tag: str | None, metadata: dict[str, str]
) -> str | None:
    """``candidates`` for these filter values."""
    labels: list[tuple[int, str, str]] = []
    if user_id:
        labels.append((USER, "", user_id))
    if tag:
        labels.append((TAG, "", tag))
    labels += [(METADATA, key, value) for key, value in metadata.items()]
    if not labels:
        return None
    return " AND ".join(
        "trace_id IN (SELECT trace_id FROM trace_labels WHERE project_id = %(project)s"
        f" AND kind = {kind} AND key = {f.param(key)} AND value = {f.param(value)})"
        for kind, key, value in labels
    )


def near(
    rows: Rows, f: Filters, query: MetricsQuery, start_param: str, end_param: str
) -> tuple[str, str | None]:
    """``queries.traces_near`` for the window, kept to the traces that may meet
    ``query``'s filters (``candidates``), and, when they are few, a condition naming
    them by id (which their near condition is then made of; else None)."""
    among = candidates(f, query)
    if among is None:
        return queries.traces_near(start_param, end_param), None
    found = rows(
        f"SELECT DISTINCT trace_id FROM ({queries.trace_ids_near(start_param, end_param, among)})"
        f" LIMIT {FEW_TRACES + 1}",
        f.params,
    )
    if len(found) > FEW_TRACES:
        return queries.traces_near(start_param, end_param, among), None
    by_id = f"trace_id IN {f.param([t for (t,) in found])}"
    return f"project_id = %(project)s AND {by_id}", by_id
