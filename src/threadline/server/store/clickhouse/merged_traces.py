"""A few traces' rollups, read by id from their packed parts and finished in Python.

What a page or a detail shows of its traces (at most a page of them): ClickHouse unites
each trace's packed parts (migration 0016), ``packed_parts`` merges them with the plain
aggregates of ``trace_parts_by_id`` (0010, 0011), and the rest of the
rule (the root's fields else the first span's, each span's first copy of its amounts,
tags in span order, the latest value of each metadata key) runs here, on a handful of
rows. The same rule written in SQL (``queries.latest_traces``) serves where a filter or a
sort needs every candidate's values; written out for a page, its lambdas cost the query
planner more than the page's data costs to read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from threadline.server.store.clickhouse.packed_parts import merged
from threadline.server.store.rollups import TraceRollup

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]
# Trace ids per statement (each id is bound into the statement's text).
_IN_CHUNK = 1000

# Each trace's packed parts (migration 0016: one JSON string per part, a stream or two
# per trace instead of some forty; a trace's parts unite as strings and are merged in
# Python by ``_merged``) and its context use, which trace_context's rows bring to the
# same table (migration 0021: a part without rollup). A trace with no part but its
# context use (its spans' rows not visible yet, on a replica that lags) is not stored
# yet, as before: ``HAVING`` leaves it out.
_MERGED = (
    "SELECT trace_id, groupUniqArrayArray(p.rollup) AS parts, {labels}, max(p.context_use)"
    " FROM trace_parts_packed AS p WHERE {where} GROUP BY trace_id HAVING notEmpty(parts)"
)
_LABELS = "groupUniqArrayArray(p.labels)"
_NO_LABELS = "[]"
# The trace ids of some sessions (``%(sessions)s``), as an array read once: ``has`` on
# it finds the parts by their sort key, in the same statement (an ``IN`` subquery's set
# is built twice and too late for the index; measured).
SESSION_TRACES = (
    "(SELECT groupUniqArray(trace_id) FROM session_members"
    " WHERE project_id = %(project)s AND session_id IN %(sessions)s) AS session_traces"
)
_OF_SESSIONS = "project_id = %(project)s AND has(session_traces, trace_id)"
_OF_IDS = "project_id = %(project)s AND trace_id IN %(ids)s"


def merged_sql(where: str, labels: bool = True, with_: Sequence[str] = ()) -> str:
    """The merged parts of the traces ``where`` selects (it must select all of a trace's
    parts or none, and name only ``project_id`` and ``trace_id``), with each trace's
    context use; ``labels``: with tags and metadata (which the sessions do not show);
    ``with_``: more named expressions ``where`` uses."""
    merged = _MERGED.format(where=where, labels=_LABELS if labels else _NO_LABELS)
    return f"WITH {', '.join(with_)} {merged}" if with_ else merged


def by_ids(
    rows: Rows, project_id: int, trace_ids: Sequence[str], labels: bool = True
) -> list[TraceRollup]:
    """The rollups of the stored traces among ``trace_ids``, in no particular order."""
    found: list[TraceRollup] = []
    # In statements of at most _IN_CHUNK ids: thousands of trace ids, bound into the
    # statement's text, would outgrow ClickHouse's max_query_size.
    for first in range(0, len(trace_ids), _IN_CHUNK):
        params = {"project": project_id, "ids": list(trace_ids[first : first + _IN_CHUNK])}
        found += [finish(row) for row in rows(merged_sql(_OF_IDS, labels), params)]
    return found


def finish(row: Sequence[Any]) -> TraceRollup:
    """A trace's rollup from a row of ``merged_sql``."""
    trace_id, rollups, labels, context = row
    (start_ns, end_ns, spans, errors, root, first_session, first_user, *rest) = merged(
        rollups, labels
    )
    first_input, last_output, copies, tag_entries, meta_entries = rest
    # root: (has a parent, start, span id, name, session, user, input preview, has
    # input, output preview, has output); first_*: (lacks it, start, span id, value);
    # last_output: (lacks it, -end, start, span id, preview).
    amounts = _first_copies(copies)
    costs = [a[5] for a in amounts if a[5] is not None]
    return TraceRollup(
        trace_id=trace_id,
        session_id=root[4] or first_session[3] or None,
        user_id=root[5] or first_user[3] or None,
        name=root[3],
        start_ns=start_ns,
        end_ns=end_ns,
        span_count=spans,
        error_count=errors,
        input_tokens=sum(a[2] for a in amounts),
        output_tokens=sum(a[3] for a in amounts),
        total_tokens=sum(a[4] for a in amounts),
        cost_usd=_sum(costs) if costs else None,
        status="error" if errors else "ok",
        tags=_tags(tag_entries),
        metadata=_metadata(meta_entries),
        input_preview=root[6] if root[7] else (first_input[3] if not first_input[0] else None),
        output_preview=(root[8] if root[9] else (last_output[4] if not last_output[0] else None)),
        context_use=context,
    )


def _first_copies(copies: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Each span's first written copy of its amounts: (span id, written, input, output,
    total tokens, cost), in span id order (the order costs are summed in)."""
    first: dict[str, tuple[Any, ...]] = {}
    for copy in sorted(copies, key=lambda c: (c[0], c[1], c[2], c[3], c[4], _cost_key(c[5]))):
        first.setdefault(copy[0], copy)
    return list(first.values())


def _cost_key(cost: float | None) -> tuple[bool, float]:
    return (cost is None, cost or 0.0)


def _sum(values: Sequence[float]) -> float:
    total = 0.0
    for value in values:
        total += value
    return total


def _tags(entries: Sequence[tuple[Any, ...]]) -> list[str]:
    """Distinct tags in span order: entries are (start, span id, position, tag)."""
    return list(dict.fromkeys(entry[3] for entry in sorted(entries)))


def _metadata(entries: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    """Each key's value from the latest span (by start, then id) that sets it: entries
    are (start, span id, key, value as JSON, value as text); keys in sorted order. Two
    copies of one span that set a key to different values (a span sent twice, changed)
    tie on start and id: the greater JSON text wins, whatever order the entries come in
    (``queries.META_ENTRIES`` sorts by the same key)."""
    latest: dict[str, str] = {}
    for entry in sorted(entries, key=lambda e: (e[0], e[1], e[3])):
        latest[entry[2]] = entry[3]
    return {key: json.loads(latest[key]) for key in sorted(latest)}


def of_sessions(
    rows: Rows, project_id: int, session_ids: Sequence[str], labels: bool = False
) -> dict[str, list[TraceRollup]]:
    """The rollups of the traces now in each of ``session_ids`` (those with any): every
    trace that ever named one of them (``session_members``), kept if its merged rollup
    is in it still. One statement: the session's trace ids, then their parts."""
    wanted = set(session_ids)
    found: dict[str, list[TraceRollup]] = {}
    if not wanted:
        return found
    params: dict[str, Any] = {"project": project_id, "sessions": sorted(wanted)}
    for row in rows(of_sessions_sql(labels), params):
        trace = finish(row)
        if trace.session_id in wanted:
            found.setdefault(trace.session_id, []).append(trace)
    return found


def of_sessions_sql(labels: bool) -> str:
    """``merged_sql`` of every trace that ever named one of the sessions
    ``%(sessions)s``, whose ids it names ``session_traces`` (an array)."""
    return merged_sql(_OF_SESSIONS, labels, [SESSION_TRACES])
