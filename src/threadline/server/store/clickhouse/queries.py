"""SQL of the ClickHouse store: the newest version of each row, and the query filters.

Tables are only ever appended to (see ``migrations/0001_initial.sql``), so a table may
hold several versions of a trace, a session or a key until ClickHouse merges them. Every
read goes through one of the ``latest_*`` subqueries below, which keep the newest
version of each row by ``argMax`` over the version column: correct before any merge,
and without ``FINAL``. The row's fields are aggregated as one tuple, because ``argMax``
over a Nullable column alone would skip the NULLs of the newest version.

Parameters use clickhouse-connect's client-side binding, ``%(name)s``.
"""

from __future__ import annotations

from typing import Any

from threadline.server.model import SessionQuery, TraceQuery, datetime_to_ns
from threadline.server.store.record_columns import KEYS


def _unpacked(fields: tuple[str, ...]) -> str:
    return ", ".join(f"tupleElement(row, {i}) AS {f}" for i, f in enumerate(fields, 1))


# How far around a time window its traces are looked for: a trace is a candidate when
# one of its parts (the spans of one export) started within this much of the window
# (``trace_times``, sorted by start). The exact overlap is then checked on the merged
# trace, so what is missed is only a trace with no part starting within an hour of the
# window (one still running, whose spans all started earlier).
WINDOW_SLACK_NS = 3600 * 1_000_000_000

# A trace's metadata entries (start, span id, key, JSON, text) sorted by key, then span
# order, then JSON: the last of a key is its value. Two copies of one span that set a
# key to different values (a span sent twice, changed) tie on start and id; the JSON
# makes the pick the same on every read, and the same as ``merged_traces._metadata``.
META_ENTRIES = "arraySort(x -> (x.3, x.1, x.2, x.4), groupUniqArrayArray(p.meta_entries))"

# A trace's rollup from its merged parts (migration 0010): the root's fields, else the
# first span's that has one; amounts summed once per span id; tags in span order;
# metadata per key from the latest span that sets it (``META_ENTRIES``).
_TRACE_MERGE = (
    "SELECT trace_id, min(p.start_ns) AS m_start, max(p.end_ns) AS m_end,"
    " max(p.written_ns) AS m_written, length(groupUniqArrayArray(p.span_ids)) AS m_spans,"
    " length(groupUniqArrayArray(p.error_span_ids)) AS m_errors, min(p.root) AS m_root,"
    " min(p.first_session) AS m_session, min(p.first_user) AS m_user,"
    " min(p.first_input) AS m_input, min(p.last_output) AS m_output,"
    " arraySort(groupUniqArrayArray(p.amounts)) AS m_copies,"
    " groupUniqArrayArray(p.tag_entries) AS m_tags,"
    f" {META_ENTRIES} AS m_meta"
    " FROM trace_parts_by_id AS p WHERE {where} GROUP BY trace_id"
)
# The last entry of each metadata key (entries in ``META_ENTRIES``'s order).
_LAST_META = (
    "arrayFilter((x, i) -> i = length(m_meta) OR m_meta[i + 1].3 != x.3,"
    " m_meta, arrayEnumerate(m_meta))"
)
# A span's first written copy of its amounts (copies sorted by span id, then written).
_FIRST_COPIES = (
    "arrayFilter((x, i) -> i = 1 OR m_copies[i - 1].1 != x.1, m_copies, arrayEnumerate(m_copies))"
)
_TRACE_SELECT = (
    f"SELECT trace_id, {_FIRST_COPIES} AS m_amounts,"
    " if(coalesce(m_root.5, '') != '', m_root.5, nullIf(m_session.4, '')) AS session_id,"
    " if(coalesce(m_root.6, '') != '', m_root.6, nullIf(m_user.4, '')) AS user_id,"
    " m_root.4 AS name, m_start AS start_ns, m_end AS end_ns,"
    " toUInt64(m_errors) AS error_count,"
    " arraySum(x -> x.3, m_amounts) AS input_tokens,"
    " arraySum(x -> x.4, m_amounts) AS output_tokens,"
    " arraySum(x -> x.5, m_amounts) AS total_tokens,"
    " if(arrayExists(x -> isNotNull(x.6), m_amounts),"
    " arraySum(x -> coalesce(x.6, 0), m_amounts), NULL) AS cost_usd,"
    " if(m_errors > 0, 'error', 'ok') AS status,"
    " arrayDistinct(arrayMap(x -> x.4, arraySort(m_tags))) AS tags,"
    f" {_LAST_META} AS m_last_meta,"
    " if(empty(m_last_meta), '{{}}', concat('{{', arrayStringConcat(arrayMap("
    "x -> concat(toJSONString(x.3), ': ', x.4), m_last_meta), ', '), '}}')) AS metadata,"
    " mapFromArrays(arrayMap(x -> x.3, arrayFilter(x -> isNotNull(x.5), m_last_meta)),"
    " arrayMap(x -> assumeNotNull(x.5), arrayFilter(x -> isNotNull(x.5), m_last_meta)))"
    " AS metadata_text,"
    " if(m_root.8 = 1, m_root.7, if(m_input.1 = 0, m_input.4, NULL)) AS input_preview,"
    " if(m_root.10 = 1, m_root.9, if(m_output.1 = 0, m_output.5, NULL)) AS output_preview,"
    " toUInt64(m_spans) AS span_count, m_written AS written_ns, c_use AS context_use"
    " FROM ({merged}) AS merged LEFT JOIN ({context}) AS c USING trace_id"
)
# Each trace's context use (migration 0008, ``context.py``): Nullable, so that a trace
# without a row reads NULL through the LEFT JOIN.
_TRACE_CONTEXT = (
    "SELECT trace_id, toNullable(max(context_use)) AS c_use FROM trace_context"
    " WHERE {where} GROUP BY trace_id"
)


def latest_traces(where: str = "project_id = %(project)s") -> str:
    """Each trace's rollup, merged from its parts, with ``span_count`` and ``written_ns``
    (its latest write, for the live feed). ``where`` selects parts: it must select all
    of a trace's parts or none (by project and trace id; see ``traces_near``)."""
    return _TRACE_SELECT.format(
        merged=_TRACE_MERGE.format(where=where), context=_TRACE_CONTEXT.format(where=where)
    )


def traces_near(start_param: str | None, end_param: str | None, among: str | None = None) -> str:
    """A condition on trace parts keeping every part of each trace that may be active
    in the window between the two bound parameters (either may be None: unbounded).
    The caller checks the exact overlap on the merged rows. ``among``: see
    ``trace_ids_near``."""
    return (
        "project_id = %(project)s AND trace_id IN"
        f" ({trace_ids_near(start_param, end_param, among)})"
    )


def trace_ids_near(start_param: str | None, end_param: str | None, among: str | None = None) -> str:
    """The ids of the traces ``traces_near`` keeps. ``among``, a condition on trace
    ids, keeps only those traces (a small set: the window's ids are found among them,
    not all gathered first)."""
    near = ["project_id = %(project)s"]
    if start_param is not None:
        near.append(f"start_ns >= {start_param} - {WINDOW_SLACK_NS}")
    if end_param is not None:
        near.append(f"start_ns <= {end_param} + {WINDOW_SLACK_NS}")
    if among is not None:
        near.append(among)
    return f"SELECT trace_id FROM trace_times WHERE {' AND '.join(near)}"


# What a session reads of its traces' parts: the trace merge of ``latest_traces``
# without tags and metadata, which sessions do not show (and which cost the most).
_SESSION_TRACES = (
    "SELECT trace_id,"
    " if(coalesce(m_root.5, '') != '', m_root.5, nullIf(m_session.4, '')) AS session_id,"
    " if(coalesce(m_root.6, '') != '', m_root.6, nullIf(m_user.4, '')) AS user_id,"
    " m_start AS start_ns, m_end AS end_ns, m_spans AS span_count, m_failed AS failed,"
    f" {_FIRST_COPIES} AS m_amounts,"
    " arraySum(x -> x.3, m_amounts) AS input_tokens,"
    " arraySum(x -> x.4, m_amounts) AS output_tokens,"
    " arraySum(x -> x.5, m_amounts) AS total_tokens,"
    " if(arrayExists(x -> isNotNull(x.6), m_amounts),"
    " arraySum(x -> coalesce(x.6, 0), m_amounts), NULL) AS cost_usd,"
    " if(m_root.8 = 1, m_root.7, if(m_input.1 = 0, m_input.4, NULL)) AS input_preview,"
    " if(m_root.10 = 1, m_root.9, if(m_output.1 = 0, m_output.5, NULL)) AS output_preview,"
    " c_use AS context_use"
    " FROM (SELECT trace_id, min(p.start_ns) AS m_start, max(p.end_ns) AS m_end,"
    " length(groupUniqArrayArray(p.span_ids)) AS m_spans,"
    " notEmpty(groupUniqArrayArray(p.error_span_ids)) AS m_failed, min(p.root) AS m_root,"
    " min(p.first_session) AS m_session, min(p.first_user) AS m_user,"
    " min(p.first_input) AS m_input, min(p.last_output) AS m_output,"
    " arraySort(groupUniqArrayArray(p.amounts)) AS m_copies"
    " FROM trace_parts_by_id AS p WHERE {where} GROUP BY trace_id) AS merged"
    f" LEFT JOIN ({_TRACE_CONTEXT}) AS c USING trace_id"
)
_SESSION_MERGE = (
    "SELECT session_id, count() AS s_traces, sum(span_count) AS s_spans,"
    " min(start_ns) AS s_start, max(end_ns) AS s_end, sum(input_tokens) AS s_input,"
    " sum(output_tokens) AS s_output, sum(total_tokens) AS s_total, sum(cost_usd) AS s_cost,"
    " countIf(failed) AS s_errors,"
    " toJSONString(arrayDistinct(arrayMap(x -> x.3, arraySort(groupArrayIf("
    "(start_ns, trace_id, assumeNotNull(user_id)), coalesce(user_id, '') != '')))))"
    " AS s_users,"
    " argMinIf(input_preview, (start_ns, trace_id), coalesce(input_preview, '') != '')"
    " AS s_first_input,"
    " argMaxIf(output_preview, (start_ns, trace_id), coalesce(output_preview, '') != '')"
    " AS s_last_output, max(context_use) AS s_peak"
    " FROM ({traces}) WHERE {where} GROUP BY session_id"
)


def latest_sessions(
    traces_where: str = "project_id = %(project)s", sessions: str | None = None
) -> str:
    """Each session's rollup, from the merged rollups of its traces (the traces'
    sessions are only known once their parts are merged). ``traces_where`` selects the
    trace parts read, and must include every trace of the sessions wanted;
    ``sessions``, the right side of an IN (a parenthesised subquery, or a parameter
    holding ids), keeps just those."""
    where = "session_id IS NOT NULL" + (f" AND session_id IN {sessions}" if sessions else "")
    merged = _SESSION_MERGE.format(traces=_SESSION_TRACES.format(where=traces_where), where=where)
    return (
        "SELECT session_id, toUInt64(s_traces) AS trace_count, toUInt64(s_spans) AS span_count,"
        " s_start AS start_ns, s_end AS end_ns, s_input AS input_tokens,"
        " s_output AS output_tokens, s_total AS total_tokens, s_cost AS cost_usd,"
        " toUInt64(s_errors) AS error_count, s_users AS user_ids,"
        " s_first_input AS first_input, s_last_output AS last_output,"
        " s_peak AS peak_context_use"
        f" FROM ({merged})"
    )


def session_ids_near(start_param: str | None, end_param: str | None) -> str:
    """The ids of the sessions ``sessions_near`` reads: every session a trace near the
    window names in any of its parts."""
    return (
        "SELECT DISTINCT named FROM trace_parts_by_id"
        " ARRAY JOIN [coalesce(tupleElement(root, 5), ''), tupleElement(first_session, 4)]"
        f" AS named WHERE {traces_near(start_param, end_param)} AND named != ''"
    )


def sessions_near(start_param: str | None, end_param: str | None) -> str:
    """``latest_sessions`` for the sessions that may be active in a window: every
    session a trace near it names in any of its parts (a superset of the sessions those
    traces are in, read without merging them), each read with all its traces (found by
    ``session_members``). The caller checks the exact overlap on the session rows."""
    named = session_ids_near(start_param, end_param)
    return latest_sessions(
        "project_id = %(project)s AND trace_id IN (SELECT trace_id FROM session_members"
        f" WHERE project_id = %(project)s AND session_id IN ({named}))",
        f"({named})",
    )


def traces_of(ids: str) -> str:
    """``latest_traces`` of the traces ``ids`` (a parenthesised subquery or an array
    parameter) lists, as a parenthesised subquery: ``sessions_of``'s twin."""
    return f"({latest_traces(f'project_id = %(project)s AND trace_id IN {ids}')})"


def sessions_of(ids: str) -> str:
    """``latest_sessions`` of the sessions ``ids`` (a parenthesised subquery) lists,
    each read with all its traces (``session_members``), as a parenthesised subquery."""
    return (
        "("
        + latest_sessions(
            "project_id = %(project)s AND trace_id IN (SELECT trace_id FROM session_members"
            f" WHERE project_id = %(project)s AND session_id IN {ids})",
            ids,
        )
        + ")"
    )


def latest_keys(where: str = "1") -> str:
    """Each API key's newest state: a revoked version wins over an active one."""
    fields = KEYS.names[1:]  # all but the id, which versions of a key share
    return (
        f"SELECT id, {_unpacked(fields)} FROM (SELECT id, argMax(({', '.join(fields)}), is_revoked)"
        f" AS row FROM api_keys WHERE {where} GROUP BY id)"
    )


# Projects are one row per name; a name's first id stands (see ``create_project``).
LATEST_PROJECTS = "SELECT name, argMin(id, created_ns) AS id FROM projects GROUP BY name"


class Filters:
    """WHERE conditions and their parameters, built up one filter at a time."""

    def __init__(self, project_id: int):
        self.where: list[str] = []
        self.params: dict[str, Any] = {"project": project_id}

    def add(self, condition: str, **params: Any) -> None:
        self.where.append(condition)
        self.params.update(params)

    def param(self, value: Any) -> str:
        """A fresh placeholder bound to ``value``."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    def sql(self) -> str:
        return " AND ".join(self.where) if self.where else "1"

    def time_overlap(self, start: Any, end: Any) -> None:
        """Keep what was active in [start, end]: a long session shows in every window."""
        self.where += self.overlap_conditions(start, end)

    def overlap_bounds(self, start: Any, end: Any) -> tuple[str | None, str | None]:
        """Placeholders bound to a window's start and end (None where unbounded)."""
        return (
            None if start is None else self.param(datetime_to_ns(start)),
            None if end is None else self.param(datetime_to_ns(end)),
        )

    def time_overlap_between(self, start_param: str | None, end_param: str | None) -> None:
        """``time_overlap`` for bounds already bound (``overlap_bounds``)."""
        if start_param is not None:
            self.where.append(f"end_ns >= {start_param}")
        if end_param is not None:
            self.where.append(f"start_ns <= {end_param}")

    def overlap_conditions(self, start: Any, end: Any) -> list[str]:
        """The conditions of ``time_overlap``, with their parameters bound here, for the
        caller to place."""
        conditions = []
        if start is not None:
            conditions.append(f"end_ns >= {self.param(datetime_to_ns(start))}")
        if end is not None:
            conditions.append(f"start_ns <= {self.param(datetime_to_ns(end))}")
        return conditions

    def text_search(self, text: str, columns: tuple[str, ...]) -> None:
        """Keep rows with ``text`` in any of ``columns``: literal, ASCII case-insensitive
        (like SQLite's LIKE on the other backend)."""
        needle = self.param(text)
        self.where.append(
            "(" + " OR ".join(f"positionCaseInsensitive({c}, {needle}) > 0" for c in columns) + ")"
        )

    def trace_conditions(self, query: TraceQuery | SessionQuery) -> list[str]:
        """Conditions on a latest-trace row for the tag, metadata and live filters."""
        conditions: list[str] = []
        if query.tag:
            conditions.append(f"has(tags, {self.param(query.tag)})")
        for key, value in query.metadata.items():
            k = self.param(key)
            conditions.append(
                f"mapContains(metadata_text, {k}) AND metadata_text[{k}] = {self.param(value)}"
            )
        if query.changed_after is not None:
            conditions.append(f"written_ns > {self.param(query.changed_after)}")
        return conditions
