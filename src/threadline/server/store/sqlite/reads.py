"""The read side of ``SQLiteStore``: the lists (sessions, traces, users), a session's
and a trace's detail, the dashboard's metrics and the live feed's watermark.

Every list reads the rollups the write transaction keeps (span_writes.py), pages by
keyset cursors (``store/cursors.py``) and sorts and filters as ``filters.py`` says.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from threadline.server.model import (
    Metrics,
    MetricsQuery,
    Page,
    Session,
    SessionDetail,
    SessionMatch,
    SessionQuery,
    Trace,
    TraceDetail,
    TraceQuery,
    UserQuery,
    UserSummary,
    datetime_to_ns,
)
from threadline.server.search.query import SearchQuery
from threadline.server.search.query import parse as parse_search
from threadline.server.store import cursors, session_turns, sorts, user_score_filters
from threadline.server.store import metrics as metric_rules
from threadline.server.store import rows as table_rows
from threadline.server.store.columns import SESSIONS, SPAN_DETAIL, TRACES
from threadline.server.store.genai_events import with_late_events
from threadline.server.store.session_turns import TurnPage
from threadline.server.store.sorts import SESSION_SORTS
from threadline.server.store.sqlite import (
    genai_events,
    inference,
    metrics,
    numbers,
    score_sorted,
    scores,
    search,
    user_list,
    user_sessions,
)
from threadline.server.store.sqlite import rows as schema
from threadline.server.store.sqlite.database import Database
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.filters import add_session_filters, add_trace_filters
from threadline.server.store.sqlite.trace_keys import KEY_OF, key_of


class Reads(Database):
    def list_sessions(self, project_id: int, query: SessionQuery) -> Page[Session]:
        where = ["project_id = ?"]
        args: list[Any] = [project_id]
        # Sorted otherwise than by start, the window's end must not pick the range by
        # start: without statistics the planner took it, and sorted every session begun
        # before the end (all of them, for a window up to now) for a page.
        by_start = query.sort == "start" and query.score_sort is None
        _time_overlap(where, args, query.start, query.end, end_by_index=by_start)
        add_session_filters(where, args, project_id, query)
        more, more_args = scores.filter_conditions(
            "session", "sessions.session_id", "sessions.project_id", query.scores
        )
        where += more
        args += more_args
        numbers.add_conditions(where, args, numbers.SESSION_COLUMNS, query.numbers)
        found = parse_search(query.q or "")
        with self._read() as conn:
            source = "sessions"
            order_type: type
            # A rare user's sessions are read by key; a common user's list is walked.
            by_time = query.score_sort is None and (
                query.sort in ("last_activity", "start")
                or (query.sort == "relevance" and not query.q)
            )
            user = (
                user_sessions.forms(conn, project_id, query.user_id, by_time)
                if query.user_id
                else None
            )
            owned = None if user is None else user.owned
            keyed = query.score_sort is None and not (query.q and query.sort == "relevance")
            if user is not None and (owned is None or not keyed):
                where.append(user.condition[0])
                args += user.condition[1]
            if query.score_sort is not None:
                if query.q:
                    condition, condition_args = _found_sessions(conn, project_id, found, query.q)
                    where.append(condition)
                    args += condition_args
                items, next_cursor = score_sorted.page(
                    conn, score_sorted.SESSIONS, project_id, query.score_sort, where, args, query
                )
            elif query.q and query.sort == "relevance":
                # Ranked by their best span; ids that begin with the text come first.
                ranked = search.ranked_sessions(conn, project_id, found, query.q)
                source = (
                    "json_each(?) AS ranked CROSS JOIN sessions ON sessions.session_id = ranked.key"
                )
                args.insert(0, json.dumps(ranked))
                order, order_type = "ranked.value", float
            else:
                found_ids = (
                    search.found_sessions(conn, project_id, found, query.q) if query.q else None
                )
                if query.q and found_ids is None:  # a common query: the list is walked in its order
                    condition, condition_args = search.session_condition(
                        conn, project_id, found, query.q
                    )
                    where.append(condition)
                    args += condition_args
                if owned is not None:
                    found_ids = owned if found_ids is None else sorted(set(found_ids) & set(owned))
                if found_ids is not None:  # a rare query or user: just the sessions found
                    source = (
                        "json_each(?) AS found CROSS JOIN sessions"
                        " ON sessions.session_id = found.value"
                    )
                    args.insert(0, json.dumps(found_ids))
            if query.score_sort is None:
                if query.sort != "relevance" or not query.q:
                    order, order_type = SESSION_SORTS[
                        "last_activity" if query.sort == "relevance" else query.sort
                    ]
                rows, next_cursor = _keyset_page(
                    conn,
                    f"SELECT {SESSIONS.sql}, {order} FROM {source}",
                    where,
                    args,
                    (order, order_type, "session_id"),
                    query,
                    table_rows.session_page_key,
                    sorts.sessions_by(query),
                )
                items = [table_rows.session(row) for row in rows]
            page_ids = [item.session_id for item in items]
            summaries = scores.summaries(conn, project_id, "session", page_ids)
            snippets = search.session_snippets(
                conn, project_id, found, page_ids, self._payloads.unpacker()
            )
            inferred = inference.signals_of(conn, project_id, page_ids)
        for item in items:
            item.scores = summaries.get(item.session_id, {})
            item.mark_inferred(inferred.get(item.session_id))
            item.snippet = snippets.get(item.session_id)
        return Page[Session](items=items, next_cursor=next_cursor)

    def find_in_session(self, project_id: int, session_id: str, q: str) -> list[SessionMatch]:
        with self._read() as conn:
            return search.session_matches(
                conn, project_id, session_id, parse_search(q), self._payloads.unpacker()
            )

    def get_session(
        self, project_id: int, session_id: str, turns: TurnPage | None = None
    ) -> SessionDetail | None:
        with self._read() as conn:
            row = conn.execute(
                schema.SELECT_SESSIONS + " AND session_id = ?", (project_id, session_id)
            ).fetchone()
            if row is None:
                return None
            begun = session_turns.start(turns, project_id, session_id) if turns else None
            traces = _session_traces(conn, project_id, session_id, turns, begun)
            own = scores.summaries(conn, project_id, "session", [session_id])
            by_trace = scores.summaries(conn, project_id, "trace", [t[0] for t in traces])
            inferred = inference.signals_of(conn, project_id, [session_id])
        rollups = [table_rows.trace_rollup(t) for t in traces]
        following = None
        if turns is not None and begun is not None:
            keys = [(r.start_ns, r.trace_id) for r in rollups]
            following = session_turns.next_cursor(keys, turns.limit, begun, project_id, session_id)
            rollups = rollups[: turns.limit]
        detail = SessionDetail(
            **table_rows.session(row).model_dump(),
            traces=[table_rows.trace(r) for r in rollups],
            first_turn=begun.turn if begun else 1,
            next_cursor=following,
        )
        detail.scores = own.get(session_id, {})
        detail.mark_inferred(inferred.get(session_id))
        for trace in detail.traces:
            trace.scores = by_trace.get(trace.trace_id, {})
        return detail

    def list_traces(self, project_id: int, query: TraceQuery) -> Page[Trace]:
        where = ["project_id = ?"]
        args: list[Any] = [project_id]
        for column in ("session_id", "user_id", "status"):
            value = getattr(query, column)
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        _time_overlap(where, args, query.start, query.end)
        add_trace_filters(where, args, project_id, query)
        more, more_args = scores.filter_conditions(
            "trace", "traces.trace_id", "traces.project_id", query.scores
        )
        where += more
        args += more_args
        numbers.add_conditions(where, args, numbers.TRACE_COLUMNS, query.numbers)
        found = parse_search(query.q or "")
        relevance = bool(query.q) and query.sort == "relevance"
        with self._read() as conn:
            source = "traces"
            order: str = "start_ns"
            order_type: type = int
            if query.score_sort is not None:
                if query.q:
                    condition, condition_args = _found_traces(conn, project_id, found, query.q)
                    where.append(condition)
                    args += condition_args
                items, next_cursor = score_sorted.page(
                    conn, score_sorted.TRACES, project_id, query.score_sort, where, args, query
                )
            elif relevance:
                # Ranked by their best span; a trace whose id is the text comes first.
                ranked = search.ranked_traces(conn, project_id, found, query.q or "")
                source = "json_each(?) AS ranked CROSS JOIN traces ON traces.trace_key = " + key_of(
                    "ranked.key"
                )
                args[:0] = [json.dumps(ranked), project_id]
                order, order_type = "ranked.value", float
            elif query.q:
                found_ids = search.found_traces(conn, project_id, found, query.q)
                if found_ids is None:  # a common query: the list is walked in its order
                    condition, condition_args = search.trace_condition(found)
                    where.append(condition)
                    args += condition_args
                else:  # a rare one: the list reads just the traces found
                    source = "json_each(?) AS found CROSS JOIN traces ON traces.trace_key = " + (
                        key_of("found.value")
                    )
                    args[:0] = [json.dumps(found_ids), project_id]
            if query.score_sort is None:
                rows, next_cursor = _keyset_page(
                    conn,
                    f"SELECT {TRACES.sql}, {order} FROM {source}",
                    where,
                    args,
                    (order, order_type, "traces.trace_id"),
                    query,
                    table_rows.trace_page_key,
                    sorts.traces_by(query),
                )
                items = [table_rows.trace(table_rows.trace_rollup(row)) for row in rows]
            page_ids = [item.trace_id for item in items]
            summaries = scores.summaries(conn, project_id, "trace", page_ids)
            snippets = search.trace_snippets(
                conn, project_id, found, page_ids, self._payloads.unpacker()
            )
        for item in items:
            item.scores = summaries.get(item.trace_id, {})
            item.snippet = snippets.get(item.trace_id)
        return Page[Trace](items=items, next_cursor=next_cursor)

    def get_trace(self, project_id: int, trace_id: str) -> TraceDetail | None:
        with self._read() as conn:
            row = conn.execute(
                schema.SELECT_TRACES_BY_ID.format("?"), (project_id, trace_id)
            ).fetchone()
            if row is None:
                return None
            spans = conn.execute(
                f"SELECT {SPAN_DETAIL.sql} FROM spans WHERE trace_key = {KEY_OF}"
                " ORDER BY start_ns, span_id",
                (project_id, trace_id),
            ).fetchall()
            summaries = scores.summaries(conn, project_id, "trace", [trace_id])
            late = genai_events.of_trace(conn, project_id, trace_id)
        trace = table_rows.trace(table_rows.trace_rollup(row))
        trace.scores = summaries.get(trace_id, {})
        unpack = self._payloads.unpacker()
        detail = TraceDetail(
            **trace.model_dump(), spans=[table_rows.span(s, unpack) for s in spans]
        )
        return with_late_events(detail, late)

    def list_users(self, project_id: int, query: UserQuery) -> Page[UserSummary]:
        with self._read() as conn:
            return user_score_filters.filtered_users(
                lambda page: user_list.list_users(conn, project_id, page), query
            )

    def metrics(self, project_id: int, query: MetricsQuery, names: Sequence[str]) -> Metrics:
        span = metric_rules.bucket_range(query)
        with self._read() as conn:
            rows = metrics.read(conn, project_id, query, span)
        return metric_rules.build(query, span, rows, names)

    def refresh_metrics(self, margin_s: float = 60.0) -> int | None:
        """Nothing to do: the write transaction keeps the dashboard's aggregates."""
        return None

    def live_watermark(self, project_id: int) -> int:
        """The feed position of the project's latest trace write (0 before any).

        Read it *before* querying with ``changed_after`` = the previous watermark: a
        write in between is then seen twice (harmless) rather than never.
        """
        with self._read() as conn:
            row = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM trace_feed WHERE project_id = ?",
                (project_id,),
            ).fetchone()
        return int(row[0])


def _keyset_page(
    conn: sqlite3.Connection,
    select: str,
    where: list[str],
    args: list[Any],
    order: tuple[str, type, str],
    query: SessionQuery | TraceQuery,
    page_key: Callable[[Sequence[Any]], Sequence[Any]],
    made_by: str,
) -> tuple[list[Any], str | None]:
    """One page of a list, newest first by ``order`` (the sort expression, its type, and
    the id column that breaks ties): the rows after ``query``'s cursor, read with one
    more to tell whether a next page exists. ``select`` ends at its FROM; ``made_by``:
    the list and sort, as its cursors name it."""
    expression, expression_type, id_column = order
    if query.cursor:
        sort_key, last_id = cursors.decode(query.cursor, expression_type, str, made_by=made_by)
        where = [*where, f"({expression}, {id_column}) < (?, ?)"]
        args = [*args, sort_key, last_id]
    sql = (
        f"{select} WHERE {' AND '.join(where)} ORDER BY {expression} DESC, {id_column} DESC LIMIT ?"
    )
    return cursors.page(
        conn.execute(sql, [*args, query.limit + 1]).fetchall(),
        query.limit,
        page_key,
        made_by=made_by,
    )


def _found_sessions(
    conn: sqlite3.Connection, project_id: int, found: SearchQuery, q: str
) -> tuple[str, list[Any]]:
    """The condition on a ``sessions`` row that ``q`` finds it (a list sorted otherwise
    than by time or relevance)."""
    found_ids = search.found_sessions(conn, project_id, found, q)
    if found_ids is None:
        return search.session_condition(conn, project_id, found, q)
    return "sessions.session_id IN (SELECT value FROM json_each(?))", [json.dumps(found_ids)]


def _found_traces(
    conn: sqlite3.Connection, project_id: int, found: SearchQuery, q: str
) -> tuple[str, list[Any]]:
    """The condition on a ``traces`` row that ``q`` finds it (see ``_found_sessions``)."""
    found_ids = search.found_traces(conn, project_id, found, q)
    if found_ids is None:
        return search.trace_condition(found)
    return (
        "traces.trace_key IN (SELECT key FROM trace_keys WHERE project_id = ?"
        " AND trace_id IN (SELECT value FROM json_each(?)))",
        [project_id, json.dumps(found_ids)],
    )


def _time_overlap(
    where: list[str], args: list[Any], start: Any, end: Any, end_by_index: bool = True
) -> None:
    """Keep what was active in [start, end]: a long session shows in every window.
    ``end_by_index=False``: the end's condition is kept from choosing an index (``+``)."""
    if start is not None:
        where.append("end_ns >= ?")
        args.append(datetime_to_ns(start))
    if end is not None:
        where.append("start_ns <= ?" if end_by_index else "+start_ns <= ?")
        args.append(datetime_to_ns(end))


def _session_traces(
    conn: sqlite3.Connection,
    project_id: int,
    session_id: str,
    turns: TurnPage | None,
    begun: session_turns.TurnStart | None,
) -> list[Any]:
    """The session's trace rows in turn order: all, or a page's and one more (to tell
    whether another follows). A page is a range of ``traces_by_session``; a page from a
    turn number first finds that turn's key in the index alone, skipping the turns
    before it there."""
    query = schema.SELECT_TRACES + " AND session_id = ?"
    args: list[Any] = [project_id, session_id]
    if turns is None or begun is None:
        return conn.execute(query + " ORDER BY start_ns, trace_id", args).fetchall()
    after, inclusive = begun.after, False
    if after is None and begun.skip:
        found = conn.execute(
            "SELECT start_ns, trace_id FROM traces INDEXED BY traces_by_session"
            " WHERE project_id = ? AND session_id = ? ORDER BY start_ns, trace_id"
            " LIMIT 1 OFFSET ?",
            (project_id, session_id, begun.skip),
        ).fetchone()
        if found is None:
            return []
        after, inclusive = (found[0], found[1]), True
    if after is not None:
        query += f" AND (start_ns, trace_id) {'>=' if inclusive else '>'} (?, ?)"
        args += after
    query += " ORDER BY start_ns, trace_id LIMIT ?"
    return conn.execute(query, [*args, turns.limit + 1]).fetchall()
