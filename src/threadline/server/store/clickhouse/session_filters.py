"""The sessions the Sessions list's and the dashboard's user, tag and metadata filters
keep on ClickHouse: the user must have a trace in the session, and one trace of it
(maybe another) must carry the tag and every metadata pair, whenever those traces ran
(the one that matched may lie outside the range).

Both halves are checked on merged traces, each merging only the traces its values'
labels name (``trace_labels``), over all time as the list's are; the labels also bound
the sessions a filtered read rolls up (``near``).
"""

from __future__ import annotations

from collections.abc import Callable

from threadline.server.model import MetricsQuery, SessionQuery, TraceQuery
from threadline.server.store.clickhouse import metric_sources, queries, trace_labels
from threadline.server.store.clickhouse.queries import Filters


def of_list(f: Filters, query: SessionQuery) -> Callable[[str | None], list[str]]:
    """The Sessions list's user, tag, metadata and live filters, as conditions on a
    session row (its ``session_id``) for the sessions ``among`` lists (an array
    parameter or a parenthesised subquery; None: any session). Each is checked on
    merged traces, merging only those its values' labels name and, given ``among``,
    only those sessions' traces (``session_members``): a read of a few candidate
    sessions merges their traces, not the user's or the tag's whole history."""
    user = f.param(query.user_id) if query.user_id else None
    user_labels = trace_labels.labelled(f, query.user_id, None, {})
    carried = f.trace_conditions(query)
    carried_labels = trace_labels.labelled(f, None, query.tag, query.metadata)

    def conditions(among: str | None) -> list[str]:
        members = (
            ""
            if among is None
            else " AND trace_id IN (SELECT trace_id FROM session_members"
            f" WHERE project_id = %(project)s AND session_id IN {among})"
        )
        found = []
        if user is not None:
            merged = queries.latest_traces(f"project_id = %(project)s AND {user_labels}{members}")
            found.append(
                f"session_id IN (SELECT session_id FROM ({merged})"
                f" WHERE user_id = {user} AND session_id IS NOT NULL)"
            )
        if carried:
            # One trace of the session must meet all of them (a live filter alone has
            # no labels: every trace, or every trace of ``among``).
            labelled = "" if carried_labels is None else f" AND {carried_labels}"
            merged = queries.latest_traces(f"project_id = %(project)s{labelled}{members}")
            found.append(
                f"session_id IN (SELECT session_id FROM ({merged})"
                f" WHERE session_id IS NOT NULL AND {' AND '.join(carried)})"
            )
        return found

    return conditions


def _halves(f: Filters, query: MetricsQuery) -> list[tuple[str, str]]:
    """(the traces' labels, an exact condition on a session row) for each half the
    query has: the user's, and the tag's with the metadata's."""
    halves: list[tuple[str, str]] = []
    if query.user_id:
        labels = trace_labels.labelled(f, query.user_id, None, {})
        assert labels is not None
        merged = metric_sources.traces(f"project_id = %(project)s AND {labels}")
        halves.append(
            (
                labels,
                f"session_id IN (SELECT assumeNotNull(session_id) FROM ({merged})"
                f" WHERE session_id IS NOT NULL AND user_id = {f.param(query.user_id)})",
            )
        )
    labels_or_none = trace_labels.labelled(f, None, query.tag, query.metadata)
    if labels_or_none is not None:
        merged = metric_sources.traces(
            f"project_id = %(project)s AND {labels_or_none}", labelled=True
        )
        carried = f.trace_conditions(TraceQuery(tag=query.tag, metadata=query.metadata))
        halves.append(
            (
                labels_or_none,
                f"session_id IN (SELECT assumeNotNull(session_id) FROM ({merged})"
                f" WHERE session_id IS NOT NULL AND {' AND '.join(carried)})",
            )
        )
    return halves


def sessions(
    f: Filters, query: MetricsQuery, start_param: str, end_param: str
) -> tuple[list[str], str | None]:
    """Conditions on a session row (its ``session_id``) that keep the sessions the
    filters match, and ``queries.traces_near`` for the window kept to the traces of the
    sessions each half's labels may name (a superset the conditions narrow): what a
    filtered read rolls up sessions from. ([], None) without filters."""
    halves = _halves(f, query)
    if not halves:
        return [], None
    named = " AND ".join(
        "session_id IN (SELECT session_id FROM session_members"
        f" WHERE project_id = %(project)s AND {labels})"
        for labels, _ in halves
    )
    among = (
        "trace_id IN (SELECT trace_id FROM session_members"
        f" WHERE project_id = %(project)s AND {named})"
    )
    return [exact for _, exact in halves], queries.traces_near(start_param, end_param, among)
