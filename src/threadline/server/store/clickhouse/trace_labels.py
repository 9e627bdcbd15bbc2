"""The traces that may meet a filter, found by the filter's values (migration 0020).

A trace's merged user, tags and metadata are each the value some span of it named, so
the traces ``trace_labels`` lists for a filter's values hold every trace that meets the
filter (and maybe some that do not: a span named the user, the root another). A read
narrows the trace parts it merges to those traces, then checks the filter on the merged
rows as before: the same rows, without merging the window's other traces.
"""

from __future__ import annotations

from threadline.server.model import MetricsQuery
from threadline.server.store.clickhouse.queries import Filters

USER, TAG, METADATA = 1, 2, 3


def candidates(f: Filters, query: MetricsQuery) -> str | None:
    """A condition on trace parts (by trace id: all of a trace's parts or none) keeping
    the traces that may meet ``query``'s user, tag and metadata filters; None when it
    has none."""
    labels: list[tuple[int, str, str]] = []
    if query.user_id:
        labels.append((USER, "", query.user_id))
    if query.tag:
        labels.append((TAG, "", query.tag))
    labels += [(METADATA, key, value) for key, value in query.metadata.items()]
    if not labels:
        return None
    return " AND ".join(
        "trace_id IN (SELECT trace_id FROM trace_labels WHERE project_id = %(project)s"
        f" AND kind = {kind} AND key = {f.param(key)} AND value = {f.param(value)})"
        for kind, key, value in labels
    )
