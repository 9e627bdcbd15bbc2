"""A trace's detail on ClickHouse in one statement: its merged parts, its spans and its
score rollups.

The detail had been three statements (the merge, the spans, the scores), three round
trips to the database. The spans and the rollups are now scalar subqueries of the
merge's statement (an array each), so the page is one round trip and one snapshot; the
engine does the same work either way (about 10 ms of CPU each, mostly a statement's
fixed cost on this engine: docs/benchmarks.md).

The spans are read by the spans table's sort key, (project, trace id, span id), in
monthly partitions by start. Trace ids are random, so every part's key range holds any
id, and each part reads a granule of its trace id column (8,192 rows) to find the
trace absent from all but one, whose granule it then reads whole. Bounding the read by
the trace's start and end (from its packed parts) opens only that one part, but the
bounds' own read cost the engine as much as it saved (docs/benchmarks.md), so the read
is by the key alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from threadline.server.model import TraceDetail
from threadline.server.store import rows as table_rows
from threadline.server.store.clickhouse import merged_traces, scores
from threadline.server.store.columns import SPAN_DETAIL

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

_TRACE = "project_id = %(project)s AND trace_id = %(trace)s"
# Its spans, one row per span id: of a span sent twice, the copy written last, which
# is the one the table keeps once merged (a ReplacingMergeTree without a version keeps
# the last inserted row), so a detail does not change with a merge. In no particular
# order: ``groupArray`` keeps its input's order only as far as the engine reads it in
# one stream, so ``read`` sorts them.
_SPANS = (
    f"(SELECT groupArray(({SPAN_DETAIL.sql})) FROM (SELECT {SPAN_DETAIL.sql} FROM spans"
    f" WHERE {_TRACE} ORDER BY span_id, ingested_ns DESC LIMIT 1 BY span_id)) AS t_spans"
)
_SPAN_START, _SPAN_ID = SPAN_DETAIL.position("start_ns"), SPAN_DETAIL.position("span_id")
_SCORES = (
    "(SELECT groupArray((target_kind, target_id, name, row)) FROM ("
    + scores.latest_rollups(
        "project_id = %(project)s AND target_kind = 'trace' AND target_id = %(trace)s"
    )
    + ")) AS t_scores"
)
_DETAIL = (
    f"WITH {_SPANS}, {_SCORES}"
    f" SELECT m.*, t_spans, t_scores FROM ({merged_traces.merged_sql(_TRACE)}) AS m"
)


def read(rows: Rows, project_id: int, trace_id: str) -> TraceDetail | None:
    """The trace's detail, None when nothing of it is stored."""
    found = rows(_DETAIL, {"project": project_id, "trace": trace_id})
    if not found:
        return None
    row = found[0]
    trace = table_rows.trace(merged_traces.finish(row[:4]))
    trace.scores = scores.by_name(scores.rollup_of(r) for r in row[5])
    # By (start, span id), as SQLite's detail lists them.
    spans = sorted(row[4], key=lambda s: (s[_SPAN_START], s[_SPAN_ID]))
    return TraceDetail(**trace.model_dump(), spans=[table_rows.span(s) for s in spans])
