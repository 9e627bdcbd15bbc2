"""The trace and session rows the dashboard reads on ClickHouse, merged from the trace
parts with only the fields its figures use.

``queries.latest_traces`` and ``queries.latest_sessions`` make the rows the lists show:
previews, tags, metadata, users, context use. The dashboard, unfiltered and ungrouped
(the view it opens on), needs a trace's times, error, session, user and amounts, and a
session's times, traces, errors and cost: merging just those reads a fraction of the
parts' bytes (the root's pick reads its rank and ids, not its previews). The picks are
``latest_traces``'s, so the figures are the same (the contract suite checks each bar
against its list).
"""

from __future__ import annotations

from threadline.server.model import MetricsQuery
from threadline.server.store.clickhouse.queries import META_ENTRIES, Filters

# The root's pick compared on its rank, name and ids only: the same least tuple as
# ``min(root)`` for these fields (the previews that follow break no tie between them).
_ROOT = "(p.root.1, p.root.2, p.root.3, p.root.4, p.root.5, p.root.6)"
_MERGE = (
    "SELECT trace_id, min(p.start_ns) AS m_start, max(p.end_ns) AS m_end,"
    " notEmpty(groupUniqArrayArray(p.error_span_ids)) AS m_failed,"
    f" min({_ROOT}) AS m_root, min(p.first_session) AS m_session,"
    " min(p.first_user) AS m_user, arraySort(groupUniqArrayArray(p.amounts)) AS m_copies"
    "{labels} FROM trace_parts_by_id AS p WHERE {where} GROUP BY trace_id"
)
# A trace's tags and metadata merged as ``latest_traces`` merges them: its spans' tags
# in span order, each metadata key's last value.
_LABELS_MERGE = f", groupUniqArrayArray(p.tag_entries) AS m_tags, {META_ENTRIES} AS m_meta"
_LABELS = (
    ", arrayDistinct(arrayMap(x -> x.4, arraySort(m_tags))) AS tags,"
    " arrayFilter((x, i) -> i = length(m_meta) OR m_meta[i + 1].3 != x.3,"
    " m_meta, arrayEnumerate(m_meta)) AS m_last_meta,"
    " mapFromArrays(arrayMap(x -> x.3, arrayFilter(x -> isNotNull(x.5), m_last_meta)),"
    " arrayMap(x -> assumeNotNull(x.5), arrayFilter(x -> isNotNull(x.5), m_last_meta)))"
    " AS metadata_text"
)
# A span's first written copy of its amounts, as ``latest_traces`` takes it.
_FIRST_COPIES = (
    "arrayFilter((x, i) -> i = 1 OR m_copies[i - 1].1 != x.1, m_copies, arrayEnumerate(m_copies))"
)
_TRACES = (
    "SELECT trace_id, m_start AS start_ns, m_end AS end_ns,"
    " if(m_failed, 'error', 'ok') AS status, m_failed AS failed,"
    " if(coalesce(m_root.5, '') != '', m_root.5, nullIf(m_session.4, '')) AS session_id,"
    " if(coalesce(m_root.6, '') != '', m_root.6, nullIf(m_user.4, '')) AS user_id,"
    f" {_FIRST_COPIES} AS m_amounts,"
    " arraySum(x -> x.3, m_amounts) AS input_tokens,"
    " arraySum(x -> x.4, m_amounts) AS output_tokens,"
    " arraySum(x -> x.5, m_amounts) AS total_tokens,"
    " if(arrayExists(x -> isNotNull(x.6), m_amounts),"
    " arraySum(x -> coalesce(x.6, 0), m_amounts), NULL) AS cost_usd"
    "{labels} FROM ({merge})"
)


def traces(where: str, labelled: bool = False) -> str:
    """Each trace's figures (start_ns, end_ns, status, failed, session_id, user_id, the
    tokens and cost_usd) among the trace parts ``where`` selects (all of a trace's
    parts or none, as ``queries.latest_traces`` asks); ``labelled``: with its ``tags``
    and ``metadata_text``, what the lists filter and the dashboard groups on."""
    merge = _MERGE.format(where=where, labels=_LABELS_MERGE if labelled else "")
    return _TRACES.format(merge=merge, labels=_LABELS if labelled else "")


def session_traces(near: str) -> str:
    """A condition on trace parts keeping every trace of each session that the trace
    parts ``near`` selects (all of a trace's parts or none) name: ``sessions_named``'s
    traces."""
    return (
        "project_id = %(project)s AND trace_id IN (SELECT trace_id FROM session_members"
        f" WHERE project_id = %(project)s AND session_id IN ({_named(near)}))"
    )


def _named(near: str) -> str:
    # As ``queries.sessions_near`` finds them: every session a near trace's parts name.
    return (
        "SELECT DISTINCT named FROM trace_parts_by_id"
        " ARRAY JOIN [coalesce(tupleElement(root, 5), ''), tupleElement(first_session, 4)]"
        f" AS named WHERE {near} AND named != ''"
    )


def trace_times(where: str) -> str:
    """Each trace's start and end (start_ns, end_ns) from ``trace_times``, a row per
    part written beside each trace part: the same as its merged parts give, read from
    four narrow columns. ``where`` selects all of a trace's rows or none."""
    return (
        "SELECT trace_id, m_start AS start_ns, m_end AS end_ns FROM (SELECT trace_id,"
        " min(start_ns) AS m_start, max(end_ns) AS m_end FROM trace_times"
        f" WHERE {where} GROUP BY trace_id)"
    )


def sessions_named(near: str, groups: str | None = None) -> str:
    """Each session the trace parts ``near`` selects (all of a trace's parts or none;
    ``queries.traces_near``'s for a window) name, read with all its traces:
    session_id, trace_count, start_ns, end_ns, error_count, cost_usd; with ``groups``
    (an array of groups of a labelled trace row, ``traces``), the arrays of its traces'
    groups as ``groups``. The caller checks the exact overlap."""
    of_traces = f", groupArray({groups}) AS groups" if groups else ""
    return (
        "SELECT session_id, count() AS trace_count, min(start_ns) AS start_ns,"
        " max(end_ns) AS end_ns, toUInt64(countIf(failed)) AS error_count,"
        f" sum(cost_usd) AS cost_usd{of_traces}"
        f" FROM ({traces(session_traces(near), labelled=groups is not None)})"
        f" WHERE session_id IS NOT NULL AND session_id IN ({_named(near)}) GROUP BY session_id"
    )


def group_values(f: Filters, query: MetricsQuery) -> str:
    """The groups ``query`` puts a labelled trace row (``traces``) in, as an array: each
    of its tags (or one NULL when it has none), its value of the metadata key (NULL
    when it has none), or one NULL when not grouped."""
    if query.group_by == "tag":
        return (
            "if(empty(tags), [CAST(NULL, 'Nullable(String)')],"
            " CAST(tags, 'Array(Nullable(String))'))"
        )
    if query.group_by == "metadata":
        key = f.param(query.group_key)
        return f"[if(mapContains(metadata_text, {key}), metadata_text[{key}], NULL)]"
    return "[CAST(NULL, 'Nullable(String)')]"
