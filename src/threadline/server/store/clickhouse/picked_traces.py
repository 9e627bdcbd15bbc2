"""The traces of a Sessions page picked from ``trace_activity``, read in one statement.

The pick (``recent_sessions``) reads the window's latest trace parts, so it has seen the
ids of its sessions' recent traces already, and the start of each one's root span where
it read it. The page's traces are read by those ids: their packed parts (with their
context use: migration 0021), and, to stay exact, the ids of any other trace the page's
sessions ever named (``session_members``), as the two branches of one ``UNION ALL``,
which ClickHouse runs side by side.

The packed parts are partitioned by the month their spans started in, and a read by id
searches the primary index of every part it may find the id in: a random id lies in
every part's key range, so each month kept cost each id its search (at 10M spans, two
thirds of a first read's CPU: docs/benchmarks.md). A trace's spans start no earlier
than its root span, which starts before its children, so the page's seen traces are
read from the month of their earliest root start (less ``ROOT_SLACK_NS``) on, not from
every month kept. A span starting over that much before its trace's root (clocks that
far apart) would be left out when its part is in an earlier month. A trace whose root
the pick did not read (one still running, its root not exported yet) is read in every
month, in a branch of the same statement.
``merged_traces.of_sessions`` runs the members' read as a scalar subquery, before its
merge: the same reads cost the engine about a quarter less CPU this way
(docs/benchmarks.md). A session with a trace the pick did not see (an older turn) costs
one more statement, for those traces only; so does a page of more traces than one
statement's text should name (they go to ``of_sessions``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from threadline.server.store.clickhouse import merged_traces
from threadline.server.store.clickhouse.merged_traces import Rows
from threadline.server.store.rollups import TraceRollup

# Each id is bound into the statement's text twice: past this many, the page's traces
# are read by ``of_sessions``, whose statement names its sessions only.
MAX_SEEN = 1000
# How long before its trace's root span a span may start and still be read with it
# (clock skew between the services of one trace).
ROOT_SLACK_NS = 3600 * 1_000_000_000
# The month of a packed part (its partition) and of a time, as migration 0016 partitions.
_MONTH = "toYYYYMM(toDateTime(intDiv({}, 1000000000)))"

# (branch, trace id, packed parts, context use): 0 a seen trace's parts and context use
# (a trace with its context use only is not stored yet: ``merged_traces``), 1 the id of
# a trace of the sessions that the pick did not see.
_SEEN_PARTS = (
    "SELECT 0 AS branch, trace_id, groupUniqArrayArray(rollup) AS parts,"
    " max(context_use) AS context FROM trace_parts_packed"
    " WHERE project_id = %(project)s AND trace_id IN {ids}{months}"
    " GROUP BY trace_id HAVING notEmpty(parts)"
)
_FROM_ROOTS_MONTH = f" AND {_MONTH.format('start_ns')} >= {_MONTH.format('%(since)s')}"
_OTHER_MEMBERS = (
    "SELECT DISTINCT 1, trace_id, [], NULL FROM session_members"
    " WHERE project_id = %(project)s AND session_id IN %(sessions)s"
    " AND trace_id NOT IN %(seen)s"
)


def page_traces_sql(rooted: bool, unrooted: bool) -> str:
    """The page's one statement: the seen traces whose root the pick read (``rooted``,
    from their roots' month on), those whose root it did not (``unrooted``, in every
    month), and the other traces of the page's sessions."""
    branches = []
    if rooted:
        branches.append(_SEEN_PARTS.format(ids="%(rooted)s", months=_FROM_ROOTS_MONTH))
    if unrooted:
        branches.append(_SEEN_PARTS.format(ids="%(unrooted)s", months=""))
    return " UNION ALL ".join([*branches, _OTHER_MEMBERS])


# The common page's: every seen trace's root read.
PAGE_TRACES = page_traces_sql(rooted=True, unrooted=False)


def of_sessions(
    rows: Rows, project_id: int, session_ids: Sequence[str], seen: Mapping[str, int | None]
) -> dict[str, list[TraceRollup]]:
    """What ``merged_traces.of_sessions`` gives (the rollups of the traces now in each of
    ``session_ids``), read knowing ``seen``: some of their traces, by id with the start
    of their root span (None where the pick did not read it)."""
    wanted = set(session_ids)
    if not wanted or not seen or len(seen) > MAX_SEEN:
        return merged_traces.of_sessions(rows, project_id, session_ids)
    roots = [start for start in seen.values() if start is not None]
    params: dict[str, Any] = {
        "project": project_id,
        "sessions": sorted(wanted),
        "seen": sorted(seen),
        "rooted": sorted(trace for trace, start in seen.items() if start is not None),
        "unrooted": sorted(trace for trace, start in seen.items() if start is None),
    }
    if roots:
        params["since"] = min(roots) - ROOT_SLACK_NS
    sql = page_traces_sql(bool(params["rooted"]), bool(params["unrooted"]))
    traces: list[TraceRollup] = []
    unseen: list[str] = []
    for branch, trace_id, rollups, context_use in rows(sql, params):
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
