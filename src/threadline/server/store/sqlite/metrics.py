"""The dashboard's aggregate queries on SQLite: over the ``traces`` and ``sessions``
rollups (and ``score_rollups``), never spans.

Each query reads the rows active in the range through an index by their end
(``end_ns`` first: a range's rows are those ending after its start; the traces'
``traces_by_end``, migration 0025, the sessions' ``sessions_by_activity``),
and groups them by the buckets they start and end in, so what comes back is small
whatever the number of rows; ``store.metrics.build`` spreads it over the buckets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from threadline.server.jsontext import loads
from threadline.server.model import TOP_ROWS, MetricsQuery
from threadline.server.store.metrics import MetricsRows, Range, user_totals
from threadline.server.store.sqlite import metric_aggregates, metric_scores, model_usage
from threadline.server.store.sqlite.chunked import select_in
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.filters import session_conditions, trace_conditions
from threadline.server.store.sqlite.metric_aggregates import HOUR_NS

_BILLION = 10**9

# A metadata value as text, as the metadata filter compares it (``model.metadata_text``).
_METADATA_VALUE = (
    "(SELECT CASE m.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
    " ELSE CAST(m.value AS TEXT) END FROM json_each(traces.metadata) AS m WHERE m.key = ?)"
)


# A tag's, metadata's or grouped trace statement reads the whole ``traces`` table in its
# order (``NOT INDEXED``) when the range holds at least this share of its rows: a row read
# along an index by time is a random read, ~4.5 times a row of a table scan (at 1M spans,
# 200k rows: 181-198 ms against 40-43). Measured on a tag's whole call at 1M spans, the
# scan was 5 % slower at a tenth of the traces, 15 % faster at 23 %, 22 % at a third.
_SCAN_SHARE = 1 / 5

# The traces' costs summed as the aggregates sum them (in 1e-12 USD, as integers:
# ``model_usage.picodollars``), so the sum is the same in whatever order the rows are read
# (by an index or by a scan) and the same as the unfiltered dashboard's; NULL with no cost.
_COST_SUM = "SUM(CAST(cost_usd * 1e12 + 0.5 AS INTEGER))"

# Up to this many sessions kept by the filters, the statements on sessions find them by
# their rowids; past it, along the range's indexes (``_Sql.few_sessions``).
_FEW_SESSIONS = 1000


class Group(NamedTuple):
    """How rows get their group: an expression in SELECT and maybe a join in FROM."""

    expr: str
    expr_args: list[Any]
    join: str
    join_args: list[Any]


class _Sql:
    """The bucket expressions and the filters of one query, with their parameters."""

    def __init__(self, conn: sqlite3.Connection, project_id: int, query: MetricsQuery, span: Range):
        self.project_id = project_id
        self.query = query
        self.span = span
        self.kept_sessions = _kept_sessions(conn, project_id, query)
        self.kept_sessions_json = json.dumps([sid for sid, _ in self.kept_sessions or ()])
        self.scan_traces = False
        self.scan_project = False
        if not query.user_id and (query.tag or query.metadata or query.group_by):
            most = _SCAN_SHARE * _table_traces(conn)
            self.scan_traces = _range_traces(conn, project_id, span) >= most
            # Only a grouping reads the whole project's traces; the project holds at least
            # the range's, so its count is read only when the range's is below the share.
            self.scan_project = query.group_by is not None and (
                self.scan_traces or _project_traces(conn, project_id) >= most
            )

    def traces(self, whole_project: bool = False) -> str:
        """The ``traces`` table as the trace statements read it: ``NOT INDEXED`` (a scan in
        the table's order) when the rows they want are most of the table (``_SCAN_SHARE``):
        those of the range, or ``whole_project``'s."""
        scan = self.scan_project if whole_project else self.scan_traces
        return "traces NOT INDEXED" if scan else "traces"

    def buckets(self) -> tuple[str, list[Any]]:
        """first, last, started: bucket indexes of a row and whether it started in range."""
        o, w = self.span.origin, self.span.width
        first, first_args = self.first_bucket("start_ns")
        return (
            f"{first} AS first, (MIN(end_ns, ?) - ?) / ? AS last, start_ns + 999 >= ? AS started",
            [*first_args, self.span.end - 1, o, w, o],
        )

    def first_bucket(self, start: str) -> tuple[str, list[Any]]:
        """The first bucket a row starting at ``start`` counts in (a bucket ends at its
        last microsecond: a start in the sub-microsecond after it counts in the next)."""
        o, w = self.span.origin, self.span.width
        return f"(MAX({start}, ?) - ? + 999) / ?", [o, o, w]

    def overlap(self, table: str, end_ranged: bool = False) -> tuple[list[str], list[Any]]:
        """A row active in the range. ``end_ranged``: the range's end is kept off the
        index by start (``+``), so that without statistics the planner reads the rows
        ending after the range's origin (``traces_by_end``) rather than every row begun
        before the range's end."""
        plus = "+" if end_ranged else ""
        return (
            [f"{table}.project_id = ?", f"{table}.end_ns >= ?", f"{plus}{table}.start_ns <= ?"],
            [self.project_id, self.span.origin, self.span.last_instant],
        )

    def trace_filters(self) -> tuple[list[str], list[Any]]:
        """The list filters (user, tag, metadata) on a ``traces`` row: a user's traces
        are found by ``traces_by_user``, the others by their end."""
        where, args = self.overlap("traces", end_ranged=not self.query.user_id)
        if self.query.user_id:
            where.append("traces.user_id = ?")
            args.append(self.query.user_id)
        more, more_args = trace_conditions(
            self.project_id, self.query.tag, self.query.metadata, None
        )
        return where + more, args + more_args

    def few_sessions(self) -> bool:
        """Whether the filters keep few sessions (a user's): the statements that read
        sessions then find them by their rowids, rather than checking every session
        active in the range along an index (the planner's choice without statistics,
        for a list of ids as for the filter's subquery)."""
        return self.kept_sessions is not None and len(self.kept_sessions) <= _FEW_SESSIONS

    def session_filters(self, by_rowid: bool = True) -> tuple[list[str], list[Any]]:
        """The same filters on a ``sessions`` row, combined as the Sessions list
        combines them (``filters.session_conditions``): the sessions kept, read once.
        ``by_rowid=False`` where the statement finds its sessions from another table."""
        where, args = self.overlap("sessions")
        if self.kept_sessions is None:
            return where, args
        if by_rowid and self.few_sessions():
            where = [f"+{condition}" for condition in where]
            where.append(f"sessions.rowid IN ({', '.join('?' * len(self.kept_sessions))})")
            args += [rowid for _, rowid in self.kept_sessions]
        else:
            where.append("sessions.session_id IN (SELECT value FROM json_each(?))")
            args.append(self.kept_sessions_json)
        return where, args

    def trace_group(self) -> Group:
        """The group of a ``traces`` row."""
        if self.query.group_by == "tag":
            return Group("g.value", [], " LEFT JOIN json_each(traces.tags) AS g", [])
        if self.query.group_by == "metadata":
            return Group(_METADATA_VALUE, [self.query.group_key], "", [])
        return Group("NULL", [], "", [])


def read(
    conn: sqlite3.Connection, project_id: int, query: MetricsQuery, span: Range
) -> MetricsRows:
    """The aggregates ``store.metrics.build`` needs, from the per-bucket aggregates
    when they serve the query, else from the rollups; ``conn`` is a read's, whose
    statements see one snapshot (database.py), so the figures agree."""
    sql = _Sql(conn, project_id, query, span)
    s_where, s_args = sql.session_filters()
    if metric_aggregates.serves(query):
        rows = metric_aggregates.read(conn, project_id, query, span)
        rows.scores = metric_scores.read(conn, project_id, span)
    else:
        rows = _read_rollups(conn, sql)
    top = "SELECT session_id, start_ns, trace_count, error_count, cost_usd FROM sessions"
    # Few sessions kept are found by their rowids and sorted; else read down the cost
    # index (0002), stopping at the tenth in the range, rather than sorting every
    # session of the range, and down the errors' index (0010: few are read).
    by_cost, by_errors = (
        ("", "")
        if sql.few_sessions()
        else (" INDEXED BY sessions_by_cost", " INDEXED BY sessions_by_errors_for_metrics")
    )
    rows.top_sessions_by_cost = conn.execute(
        f"{top}{by_cost} WHERE {' AND '.join(s_where)} AND cost_usd > 0"
        " ORDER BY COALESCE(cost_usd, -1.0) DESC, session_id DESC LIMIT ?",
        [*s_args, TOP_ROWS],
    ).fetchall()
    rows.top_sessions_by_errors = conn.execute(
        f"{top}{by_errors} WHERE {' AND '.join(s_where)}"
        " AND error_count > 0 ORDER BY error_count DESC, session_id DESC LIMIT ?",
        [*s_args, TOP_ROWS],
    ).fetchall()
    return rows


# How many traces the range and the project hold come from the per-hour aggregates
# (``metric_activity``: a few rows per hour of the project, by the hours a trace touches,
# and its log's rows: metric_log.py)
# and how many the table holds at most from its largest rowid (deleted rows leave gaps,
# so a table with many deleted rows errs toward the index): no trace is read.


def _range_traces(conn: sqlite3.Connection, project_id: int, span: Range) -> int:
    """The traces active in the range: the aggregates' rows of its hours, read along
    their key (``last_hour`` second), not every row of the project."""
    where = "project_id = ? AND last_hour >= ? AND first_hour <= ?"
    (count,) = conn.execute(
        f"SELECT (SELECT TOTAL(traces) FROM metric_activity WHERE {where})"
        f" + (SELECT TOTAL(traces) FROM metric_activity_log WHERE {where})",
        (project_id, span.origin // HOUR_NS, (span.end - 1) // HOUR_NS) * 2,
    ).fetchone()
    return int(count)


def _project_traces(conn: sqlite3.Connection, project_id: int) -> int:
    (count,) = conn.execute(
        "SELECT (SELECT TOTAL(traces) FROM metric_activity WHERE project_id = ?)"
        " + (SELECT TOTAL(traces) FROM metric_activity_log WHERE project_id = ?)",
        (project_id, project_id),
    ).fetchone()
    return int(count)


def _table_traces(conn: sqlite3.Connection) -> int:
    (count,) = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM traces").fetchone()
    return int(count)


def _kept_sessions(
    conn: sqlite3.Connection, project_id: int, query: MetricsQuery
) -> list[tuple[str, int]] | None:
    """The ids and rowids of the sessions the filters keep; None unfiltered. A tag or metadata
    filter finds them by every trace of the project (whenever it ran): read once here
    rather than by each of the five statements on sessions."""
    conditions, args = session_conditions(project_id, query.user_id, query.tag, query.metadata)
    if not conditions:
        return None
    return [
        (session_id, rowid)
        for session_id, rowid in conn.execute(
            "SELECT session_id, rowid FROM sessions WHERE project_id = ? AND "
            + " AND ".join(conditions),
            [project_id, *args],
        )
    ]


def _read_rollups(conn: sqlite3.Connection, sql: _Sql) -> MetricsRows:
    """The series, users' totals, usage by model, score sums and session figures of a
    filtered or grouped query, from the rollup rows it selects: the range's traces once
    (added up in SQL by group, user and buckets, with the usage by model and the ids of
    the traces each row adds up), the range's sessions once (counts, figures and their
    own scores), and, grouped, each session's groups once."""
    rows = MetricsRows()
    buckets, bucket_args = sql.buckets()
    t_where, t_args = sql.trace_filters()
    # Grouped by tag, a trace row is read with its tags as stored (a JSON list) and put in
    # each tag's group here: no json_each a trace, and the rows, a trace in one, give the
    # users' totals too (each trace once) with no statement of their own.
    by_tags = sql.query.group_by == "tag"
    tg = Group("traces.tags", [], "", []) if by_tags else sql.trace_group()
    groups_of = _TagGroups() if by_tags else _one_group
    traces_from = f"{sql.traces()}{tg.join} WHERE {' AND '.join(t_where)}"
    # Parameters in the order their placeholders appear: SELECT, FROM, WHERE.
    t_params = [*tg.expr_args, *bucket_args, *tg.join_args, *t_args]
    # Each row also carries its traces' usage by model (each trace's small JSON object,
    # model_usage.py, joined by commas: parsed in Python, as SQL's json_each and a
    # json_extract per entry cost ~4 times as much, docs/benchmarks.md) and their ids
    # (for their scores): the traces are read once, not once more for these.
    found = conn.execute(
        f"SELECT {tg.expr} AS grp, user_id, {buckets}, COUNT(*), SUM(status = 'error'),"
        f" {_COST_SUM}, SUM(input_tokens), SUM(output_tokens), SUM(total_tokens),"
        " group_concat(traces.model_usage), json_group_array(traces.trace_id)"
        f" FROM {traces_from} GROUP BY grp, user_id, first, last, started",
        t_params,
    ).fetchall()
    if by_tags:
        rows.traces = [(g, *row[1:11]) for row in found for g in groups_of(row[0])]
    else:
        rows.traces = [row[:11] for row in found]
    if sql.query.group_by is not None:
        # A row holds a trace once (grouped by metadata a trace has one value): the users'
        # totals count each trace once, however many groups it is in.
        rows.user_totals = user_totals(found)
    sums = _ScoreSums()
    # A user's few traces find their score rollups by key; many, by one read of the
    # range's rollups (a lookup a trace would cost more).
    trace_scores = None if sql.query.user_id else _trace_scores(conn, sql.project_id, sql.span)
    few: list[tuple[str, Sequence[str | None]]] = []
    usage: list[tuple[str | None, int, str]] = []
    # Usage and scores count once, in the bucket a trace started in, if in the range.
    for grp, _, bucket, _, started, *_, text, ids in found:
        if not started:
            continue
        groups = groups_of(grp)
        if text is not None:
            for g in groups:
                usage.append((g, bucket, text))
        for trace_id in loads(ids):
            if trace_scores is None:
                few.append((trace_id, groups))
            else:
                scores = trace_scores.get(trace_id)
                if scores is not None:
                    sums.add(scores, groups)
    if few:
        by_id = _trace_scores(conn, sql.project_id, sql.span, [t for t, _ in few])
        for trace_id, of in few:
            scores = by_id.get(trace_id)
            if scores is not None:
                sums.add(scores, of)
    rows.models = model_usage.by_group_and_bucket(usage)
    _read_sessions(conn, sql, rows, sums)
    rows.scores = sums.rows(sql.span)
    return rows


def _one_group(grp: str | None) -> tuple[str | None]:
    return (grp,)


# A score rollup's value sum in fixed point (``metric_scores.UNITS_SQL``).
_UNITS = tuple(units.replace("value_sum", "r.value_sum") for units in metric_scores.UNITS_SQL)

# A score rollup's target's hour in the range, its numeric values (in fixed point).
_SCORED_IN_RANGE = (
    "r.project_id = ? AND r.target_kind = ? AND r.value_count > 0 AND r.target_hour BETWEEN ? AND ?"
)

Scores = list[tuple[int, str, int, int, int]]


def _trace_scores(
    conn: sqlite3.Connection, project_id: int, span: Range, ids: list[str] | None = None
) -> dict[str, Scores]:
    """The numeric score rollups of traces counting in the range's hours (``target_hour``,
    migration 0028: the hour the trace started in, by the rule the unfiltered sums keep),
    by trace: (hour, name, count, whole, billionths) each, in fixed point as
    ``metric_scores`` sums them. Those of ``ids`` by key; else all the project's, read
    in their key's order (sequential; no index holds the hour since 0032)."""
    statement = (
        f"SELECT r.target_id, r.target_hour, r.name, r.value_count, {_UNITS[0]}, {_UNITS[1]}"
        f" FROM score_rollups AS r WHERE {_SCORED_IN_RANGE}"
    )
    args = (project_id, "trace", *_hours(span))
    found: dict[str, Scores] = {}
    for target_id, *rollup in (
        conn.execute(statement, args)
        if ids is None
        else select_in(conn, statement + " AND r.target_id IN ({})", args, sorted(set(ids)))
    ):
        found.setdefault(target_id, []).append(tuple(rollup))
    return found


def _hours(span: Range) -> tuple[int, int]:
    return span.origin // HOUR_NS, (span.end - 1) // HOUR_NS


def _read_sessions(
    conn: sqlite3.Connection, sql: _Sql, rows: MetricsRows, sums: _ScoreSums
) -> None:
    """Session counts per (group, buckets), the sessions' own score sums (added to
    ``sums``) and, narrowed, the figures of the distributions, in one statement: the
    range's sessions kept by the filters are read once, and, grouped, each session's
    groups (those of all its traces, whenever they ran: a session active in the range
    may have no trace in it) found once, in materialized CTEs the parts read."""
    buckets, bucket_args = sql.buckets()
    s_where, s_args = sql.session_filters()
    with_groups: str = ""
    with_args: list[Any] = []
    grp, join = "NULL", ""
    if sql.query.group_by is not None:
        trace = sql.trace_group()
        with_groups = (
            f"sg AS MATERIALIZED (SELECT DISTINCT traces.session_id AS sid,"
            f" {trace.expr} AS grp FROM {sql.traces(whole_project=True)}{trace.join}"
            " WHERE traces.project_id = ? AND traces.session_id IS NOT NULL), "
        )
        with_args = [*trace.expr_args, *trace.join_args, sql.project_id]
        grp, join = "sg.grp", " JOIN sg ON sg.sid = s.session_id"
    # Grouped, the sessions are not narrowed: their distributions are the unfiltered
    # dashboard's, read down the lists' indexes rather than from every session's figures.
    narrowed = sql.kept_sessions is not None
    if not narrowed:
        rows.distributions = metric_aggregates.distributions(conn, sql.project_id, sql.span)
    figures_part = (
        " UNION ALL SELECT 2, NULL, trace_count, duration, NULL, NULL, cost_usd, NULL FROM s"
    )
    sessions: list[tuple] = []
    figures: list[tuple] = []
    # Session rows: (0, group, first, last, started, sessions, with an error, NULL); score
    # rows: (1, group, name, hour, NULL, count, whole, billionths); figures: (2, NULL,
    # traces, duration, NULL, NULL, cost, NULL).
    for part, g, first_or_name, last_or_hour, _, count, errors_or_whole, nanos in conn.execute(
        f"WITH {with_groups}s AS MATERIALIZED (SELECT session_id, {buckets},"
        " error_count > 0 AS failed, trace_count, end_ns - start_ns AS duration, cost_usd"
        f" FROM sessions WHERE {' AND '.join(s_where)})"
        f" SELECT 0, {grp} AS grp, first, last, started, COUNT(*), SUM(failed), NULL"
        f" FROM s{join} GROUP BY grp, first, last, started"
        f" UNION ALL SELECT 1, {grp} AS grp, r.name, r.target_hour, NULL, SUM(r.value_count),"
        f" SUM({_UNITS[0]}), SUM({_UNITS[1]}) FROM score_rollups AS r CROSS JOIN s"
        f" ON s.session_id = r.target_id{join} WHERE {_SCORED_IN_RANGE} AND s.started"
        f" GROUP BY grp, r.name, r.target_hour{figures_part if narrowed else ''}",
        [*with_args, *bucket_args, *s_args, sql.project_id, "session", *_hours(sql.span)],
    ):
        if part == 0:
            sessions.append((g, first_or_name, last_or_hour, count, errors_or_whole))
        elif part == 1:
            sums.add([(last_or_hour, first_or_name, count, errors_or_whole, nanos)], (g,))
        else:
            figures.append((first_or_name, last_or_hour, errors_or_whole))
    rows.sessions = sessions
    rows.session_figures = figures


class _ScoreSums:
    """Score sums per (hour, name, group) in fixed point, handed to ``build`` a row per
    hour in hour order, as the unfiltered dashboard's (``metric_scores.read``): a filter
    that keeps every target gives the same averages, to the last digit."""

    def __init__(self) -> None:
        self._cells: dict[tuple[int, str, str | None], list[int]] = {}

    def add(self, rollups: Scores, groups: Sequence[str | None]) -> None:
        for hour, name, value_count, whole, nanos in rollups:
            for grp in groups:
                cell = self._cells.get((hour, name, grp))
                if cell is None:
                    self._cells[(hour, name, grp)] = [value_count, whole, nanos]
                else:
                    cell[0] += value_count
                    cell[1] += whole
                    cell[2] += nanos

    def rows(self, span: Range) -> list[tuple]:
        return [
            (
                name,
                grp,
                (hour * HOUR_NS - span.origin) // span.width,
                (whole * _BILLION + nanos) / _BILLION,
                value_count,
            )
            for (hour, name, grp), (value_count, whole, nanos) in sorted(
                self._cells.items(), key=lambda item: item[0][:2]
            )
        ]


class _TagGroups:
    """The groups of a trace by its tags column (a JSON list of strings): each tag, or
    None for none, as ``LEFT JOIN json_each(traces.tags)`` gives them; each distinct
    column parsed once (a store has few tag sets)."""

    def __init__(self) -> None:
        self._seen: dict[str, list[str | None]] = {}

    def __call__(self, tags: str) -> list[str | None]:
        found = self._seen.get(tags)
        if found is None:
            found = self._seen[tags] = loads(tags) or [None]
        return found
