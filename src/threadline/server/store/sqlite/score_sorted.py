"""The Sessions and Traces lists sorted by a score (``store/score_sorts.py``) in SQLite.

The scored part walks the score rollups' index of that kind and name in the order of
the value (``score_rollups_by_average`` or ``_by_label``, migration 0005, whose rows end
with the target id, which breaks ties) and looks each row up by its key, keeping those
the list's filters keep: a page reads its rows and the ones filtered out before them,
never the whole list. That walk goes as far as ``WALKED`` values from the cursor: if
the filters or the window kept too few of them to fill the page (a narrow window over
a long history), the rest of the page is read from the rows the window and filters
keep, each looked up in the rollups by its key, and sorted (a cost that grows with the
window, not with the rows outside it). The rest (rows without that score) walks the
list's time index newest first, each row checked for the score by the rollups'
primary key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from threadline.server.model import ScoreSort, SessionQuery, TraceQuery
from threadline.server.store import rows as table_rows
from threadline.server.store import score_sorts, sorts
from threadline.server.store.columns import SESSIONS as SESSION_COLUMNS
from threadline.server.store.columns import TRACES as TRACE_COLUMNS
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.trace_keys import key_of

# How many of the name's values (in order from the cursor) the scored part walks,
# looking each row up, before it reads the rest of the page from the rows the window and
# filters keep instead.
WALKED = 2000


@dataclass(frozen=True)
class Listed:
    """What differs between the two lists."""

    kind: str  # the rollups' target kind
    select: str  # the row's columns
    table: str
    id_column: str
    time_column: str  # the rest's order, newest first
    join: str  # the row of the rollup's ``ranked.sort_id`` (``?``: the project)
    present: Callable[[Sequence[Any]], Any]


SESSIONS = Listed(
    "session",
    SESSION_COLUMNS.sql,
    "sessions",
    "sessions.session_id",
    "sessions.end_ns",
    "sessions.project_id = ? AND sessions.session_id = ranked.sort_id",
    table_rows.session,
)
TRACES = Listed(
    "trace",
    TRACE_COLUMNS.sql,
    "traces",
    "traces.trace_id",
    "traces.start_ns",
    "traces.trace_key = " + key_of("ranked.sort_id"),
    lambda row: table_rows.trace(table_rows.trace_rollup(row)),
)


def page(
    conn: sqlite3.Connection,
    listed: Listed,
    project_id: int,
    sort: ScoreSort,
    where: list[str],
    args: list[Any],
    query: SessionQuery | TraceQuery,
) -> tuple[list[Any], str | None]:
    """A page of ``listed``'s rows meeting ``where`` (``args``) sorted by ``sort``, after
    ``query``'s cursor, and the cursor after it: ``Session``s or ``Trace``s."""
    column = "average" if sort.by == "average" else "label"
    direction = "DESC" if sort.descending else "ASC"
    after_op = "<" if sort.descending else ">"
    until_op = ">=" if sort.descending else "<="
    conditions = " AND ".join(where)

    rollups = (
        "FROM score_rollups WHERE project_id = ? AND target_kind = ? AND name = ?"
        f" AND {column} IS NOT NULL"
    )
    rollup_args = [project_id, listed.kind, sort.name]

    def by_value(
        after: tuple[Any, str] | None, until: tuple[Any, str] | None, count: int
    ) -> list[tuple[Any, str, Any]]:
        """The rows after ``after`` up to ``until`` (inclusive; None: the end), walking
        the name's index in order, each row looked up by its key."""
        sql = (
            f"SELECT {listed.select}, ranked.sort_key, ranked.sort_id FROM"
            f" (SELECT target_id AS sort_id, {column} AS sort_key {rollups}) AS ranked"
            f" CROSS JOIN {listed.table} ON {listed.join} WHERE {conditions}"
        )
        params: list[Any] = [*rollup_args, project_id, *args]
        if after is not None:
            sql += f" AND (ranked.sort_key, ranked.sort_id) {after_op} (?, ?)"
            params += list(after)
        if until is not None:
            sql += f" AND (ranked.sort_key, ranked.sort_id) {until_op} (?, ?)"
            params += list(until)
        sql += f" ORDER BY ranked.sort_key {direction}, ranked.sort_id {direction} LIMIT ?"
        rows = conn.execute(sql, [*params, count]).fetchall()
        return [(row[-2], row[-1], listed.present(row)) for row in rows]

    def in_window(after: tuple[Any, str], count: int) -> list[tuple[Any, str, Any]]:
        """The rows after ``after`` among those the window and filters keep, each
        looked up in the rollups by its key, sorted."""
        sql = (
            f"SELECT {listed.select}, ranked.sort_key, ranked.sort_id FROM {listed.table}"
            f" CROSS JOIN (SELECT project_id AS sort_project, target_kind AS sort_kind,"
            f" name AS sort_name, target_id AS sort_id, {column} AS sort_key"
            " FROM score_rollups) AS ranked ON ranked.sort_project = ?"
            f" AND ranked.sort_kind = ? AND ranked.sort_id = {listed.id_column}"
            f" AND ranked.sort_name = ? WHERE {conditions} AND ranked.sort_key IS NOT NULL"
            f" AND (ranked.sort_key, ranked.sort_id) {after_op} (?, ?)"
            f" ORDER BY ranked.sort_key {direction}, ranked.sort_id {direction} LIMIT ?"
        )
        rows = conn.execute(sql, [*rollup_args, *args, *after, count]).fetchall()
        return [(row[-2], row[-1], listed.present(row)) for row in rows]

    def scored(after: tuple[Any, str] | None, count: int) -> list[tuple[Any, str, Any]]:
        # The name's values in order as far as WALKED of them (read from the index
        # alone), then the rows those hold; if the filters kept too few of them to
        # fill the page, the rest is read from the rows they keep (what that costs grows
        # with the window, not with the rows outside it).
        bound = f" AND ({column}, target_id) {after_op} (?, ?)" if after is not None else ""
        last = conn.execute(
            f"SELECT {column}, target_id {rollups}{bound}"
            f" ORDER BY {column} {direction}, target_id {direction} LIMIT 1 OFFSET ?",
            [*rollup_args, *(after or ()), WALKED - 1],
        ).fetchone()
        found = by_value(after, None if last is None else tuple(last), count)
        if len(found) < count and last is not None:
            found += in_window(tuple(last), count - len(found))
        return found

    def unscored(after: tuple[Any, str] | None, count: int) -> list[tuple[Any, str, Any]]:
        sql = (
            f"SELECT {listed.select}, {listed.time_column}, {listed.id_column}"
            f" FROM {listed.table} WHERE {conditions} AND NOT EXISTS (SELECT 1"
            f" FROM score_rollups r WHERE r.project_id = {listed.table}.project_id"
            f" AND r.target_kind = ? AND r.target_id = {listed.id_column} AND r.name = ?"
            f" AND r.{column} IS NOT NULL)"
        )
        params: list[Any] = [*args, listed.kind, sort.name]
        if after is not None:
            sql += f" AND ({listed.time_column}, {listed.id_column}) < (?, ?)"
            params += list(after)
        sql += f" ORDER BY {listed.time_column} DESC, {listed.id_column} DESC LIMIT ?"
        rows = conn.execute(sql, [*params, count]).fetchall()
        return [(row[-2], row[-1], listed.present(row)) for row in rows]

    filtered = sorts.filtered_by(query)
    picked = score_sorts.pick(
        listed.kind, sort, query.limit, query.cursor, scored, unscored, where=filtered
    )
    return score_sorts.page(picked, query.limit, sort, listed.kind, where=filtered)
