"""The traces of a Sessions page picked from ``trace_activity``, read in one statement.

The pick (``recent_sessions``) reads the window's latest trace parts, so it has seen the
ids of its sessions' recent traces already. The page's traces are read by those ids: their
packed parts (with their context use: migration 0021), and, to stay exact, the ids of
any other trace the page's sessions ever named (``session_members``), as the two
branches of one ``UNION ALL``, which ClickHouse runs side by side.
``merged_traces.of_sessions`` runs the members' read as a scalar subquery, before its
merge: the same reads cost the engine about a quarter less CPU this way
(docs/benchmarks.md). A session with a trace the pick did not see (an older turn) costs
one more statement, for those traces only; so does a page of more traces than one
statement's text should name (they go to ``of_sessions``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from threadline.server.store.clickhouse import merged_traces
from threadline.server.store.clickhouse.merged_traces import Rows
from threadline.server.store.rollups import TraceRollup

# Each id is bound into the statement's text twice: past this many, the page's traces
# are read by ``of_sessions``, whose statement names its sessions only.
MAX_SEEN = 1000

# (branch, trace id, packed parts, context use): 0 a seen trace's parts and context use
# (a trace with its context use only is not stored yet: ``merged_traces``), 1 the id of
# a trace of the sessions that the pick did not see.
_PAGE_TRACES = (
    "SELECT 0 AS branch, trace_id, groupUniqArrayArray(rollup) AS parts,"
    " max(context_use) AS context FROM trace_parts_packed"
    " WHERE project_id = %(project)s AND trace_id IN %(seen)s GROUP BY trace_id"
    " HAVING notEmpty(parts)"
    " UNION ALL SELECT DISTINCT 1, trace_id, [], NULL FROM session_members"
    " WHERE project_id = %(project)s AND session_id IN %(sessions)s"
    " AND trace_id NOT IN %(seen)s"
)


def of_sessions(
    rows: Rows, project_id: int, session_ids: Sequence[str], seen: Collection[str]
) -> dict[str, list[TraceRollup]]:
    """What ``merged_traces.of_sessions`` gives (the rollups of the traces now in each of
    ``session_ids``), read knowing ``seen``, ids of some of their traces."""
    wanted = set(session_ids)
    if not wanted or not seen or len(seen) > MAX_SEEN:
        return merged_traces.of_sessions(rows, project_id, session_ids)
    params: dict[str, Any] = {
        "project": project_id,
        "sessions": sorted(wanted),
        "seen": sorted(seen),
    }
    traces: list[TraceRollup] = []
    unseen: list[str] = []
    for branch, trace_id, rollups, context_use in rows(_PAGE_TRACES, params):
        if branch == 0:
            traces.append(merged_traces.finish((trace_id, rollups, [], context_use)))
        else:
            unseen.append(trace_id)
    if unseen:
        traces += merged_traces.by_ids(rows, project_id, unseen, labels=False)
    found: dict[str, list[TraceRollup]] = {}
    for trace in traces:
        # A trace the pick saw by a part that named a session may be in another now.
        if trace.session_id in wanted:
            found.setdefault(trace.session_id, []).append(trace)
    return found
