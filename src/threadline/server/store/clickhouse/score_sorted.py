"""The Sessions and Traces lists sorted by a score (``store/score_sorts.py``) in
ClickHouse: which rows a page holds, picked on their sort keys before they are rolled up
in full (as the store's other sorts pick theirs).

The scored part walks the name's values in order: a range of ``score_rollups_by_average``
or ``_by_label`` (migration 0024, kept by views on every rollup written), read from the
cursor a stretch at a time. A row there may be an old value of its target, so each
stretch keeps the candidates whose newest rollup (``score_rollups``, by primary key)
has that value still, then rolls up only their sessions or traces and keeps those the
list's filters keep, until the page is full. A page thus reads about as many values as
it shows, whatever the number of scored rows. When the filters or the window keep so
few of the candidates that a few stretches do not fill the page, the rest of it is read
the other way round: the newest values of the rows the window and the filters keep
(what that costs grows with the window, not with the rows outside it). The rest (rows
without a value) reads the list's source (the window's sessions or traces, as the other
sorts do) for those without one, newest first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from threadline.server.model import ScoreSort
from threadline.server.store import score_sorts
from threadline.server.store.clickhouse.queries import Filters
from threadline.server.store.clickhouse.scores import ROLLUP_FIELDS, latest_rollups

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]
# Up to n of the list's rows newest first after a (time, id), as (id, time); None when
# it cannot tell them cheaply.
Newest = Callable[[tuple[Any, str] | None, int], list[tuple[str, Any]] | None]

# The first stretch of candidates: this many per row wanted, at least MIN_STRETCH (a
# filter may keep few of them); each next one four times longer, up to MAX_STRETCH ids
# (bound into the statement's text, which ClickHouse's max_query_size bounds). After
# STRETCHES stretches the rest of the page is read from the window's rows instead.
STRETCH_PER_ROW = 4
MIN_STRETCH = 256
MAX_STRETCH = 1000
STRETCHES = 4


def pick(
    rows: Rows,
    f: Filters,
    source: str,
    source_of: Callable[[str], str],
    kind: str,
    id_column: str,
    time_column: str,
    sort: ScoreSort,
    limit: int,
    cursor: str | None,
    where: str,
    newest: Newest | None = None,
    kept_among: Callable[[str], str] | None = None,
    windowed: bool = False,
) -> list[score_sorts.Picked[None]]:
    """Up to ``limit + 1`` rows meeting ``f``, sorted by ``sort``, after ``cursor``:
    ``source`` is the list's (a subquery with ``id_column`` and ``time_column``), and
    ``source_of(ids)`` the same rows of the ids a parameter holds only. ``newest``:
    when the list's filters leave it the list as it opens, its own cheaper pick of the
    rows newest first (``recent_sessions``, ``recent_traces``), which the rows without
    a value are then walked along. ``kept_among(ids)``: ``f``'s conditions for the rows
    of the ids a parameter holds only (narrower reads, the same rows kept). ``windowed``:
    the source is a window's rows (it has a start), which the rows without a value of
    a filtered list are then walked along, newest first."""
    kept_where = kept_among or (lambda ids: f.sql())
    by = "average" if sort.by == "average" else "label"
    element = ROLLUP_FIELDS.index(by) + 1
    name = (
        f"project_id = %(project)s AND target_kind = {f.param(kind)}"
        f" AND name = {f.param(sort.name)}"
    )
    direction = "DESC" if sort.descending else "ASC"
    after_op = "<" if sort.descending else ">"

    def newest_values(targets: str | None) -> str:
        """(target_id, sort_key): the newest value of each target ``targets`` (a
        parenthesised subquery or an array parameter; None: every target) lists that
        has one."""
        where = name if targets is None else f"{name} AND target_id IN {targets}"
        return (
            f"SELECT target_id, tupleElement(row, {element}) AS sort_key FROM"
            f" ({latest_rollups(where)}) WHERE sort_key IS NOT NULL"
        )

    def after_key(after: tuple[Any, str] | None, key_column: str) -> str:
        """(key_column, target_id) after ``after`` in the list's order."""
        if after is None:
            return "1"
        return f"({key_column}, target_id) {after_op} ({f.param(after[0])}, {f.param(after[1])})"

    def by_value(after: tuple[Any, str] | None, count: int) -> list[tuple[Any, str, None]]:
        # Stretches of the name's values in order, each kept where the value is its
        # target's newest and the filters keep the target, until the page is full; at a
        # rate the stretches left would not fill the page at, the window's rows instead.
        def values_after(after: tuple[Any, str] | None, stretch: int) -> list[tuple[Any, ...]]:
            return rows(
                f"SELECT target_id, {by} FROM score_rollups_by_{by}"
                f" WHERE {name} AND {after_key(after, by)}"
                f" ORDER BY {by} {direction}, target_id {direction} LIMIT {f.param(stretch)}",
                f.params,
            )

        def kept_values(candidates: list[tuple[Any, ...]]) -> list[tuple[Any, str, None]]:
            if not candidates:
                return []
            ids = sorted({row[0] for row in candidates})
            newest: dict[str, Any] = dict(
                rows(newest_values("%(candidate_ids)s"), {**f.params, "candidate_ids": ids})
            )
            live = [row for row in candidates if newest.get(row[0]) == row[1]]
            if not live:
                return []
            statement = (
                f"SELECT {id_column} FROM {source_of('%(candidate_ids)s')} AS listed"
                f" WHERE {kept_where('%(candidate_ids)s')}"
            )
            candidate_ids = sorted({row[0] for row in live})
            kept = {row[0] for row in rows(statement, {**f.params, "candidate_ids": candidate_ids})}
            # A target's row twice (not merged yet) is the same value: kept once.
            found: list[tuple[Any, str, None]] = []
            seen: set[str] = set()
            for row_id, key in live:
                if row_id in kept and row_id not in seen:
                    seen.add(row_id)
                    found.append((key, row_id, None))
            return found

        return _in_stretches(count, after, values_after, kept_values, in_window)

    def in_window(after: tuple[Any, str] | None, count: int) -> list[tuple[Any, str, None]]:
        # The newest values of the rows the window and the filters keep, in order.
        kept = f"(SELECT {id_column} FROM {source} AS listed WHERE {f.sql()})"
        found = rows(
            f"SELECT target_id, sort_key FROM ({newest_values(kept)})"
            f" WHERE {after_key(after, 'sort_key')}"
            f" ORDER BY sort_key {direction}, target_id {direction} LIMIT {f.param(count)}",
            f.params,
        )
        return [(key, row_id, None) for row_id, key in found]

    def window_newest(after: tuple[Any, str] | None, count: int) -> list[tuple[str, Any]]:
        # The window's rows the filters keep, newest first (each stretch rolls the
        # window up again: what any sort of it costs, whatever lies outside it).
        kept = f.sql()
        if after is not None:
            kept += (
                f" AND ({time_column}, {id_column}) < ({f.param(after[0])}, {f.param(after[1])})"
            )
        statement = (
            f"SELECT {id_column}, {time_column} FROM {source} AS listed WHERE {kept}"
            f" ORDER BY {time_column} DESC, {id_column} DESC LIMIT {f.param(count)}"
        )
        return [(row[0], row[1]) for row in rows(statement, f.params)]

    along = newest if newest is not None else window_newest if windowed else None

    def unscored(after: tuple[Any, str] | None, count: int) -> list[tuple[Any, str, None]]:
        if along is None:
            return without_value(after, count)

        # Stretches of the list's newest rows, each kept where the row has no value
        # (its newest rollup, by primary key), until the page is full; when the rows
        # have values at a rate the stretches left would not fill the page at, the rest
        # is read against every value at once, as without ``newest``.
        def without_values(candidates: list[tuple[Any, ...]]) -> list[tuple[Any, str, None]]:
            ids = sorted({row_id for row_id, _ in candidates})
            valued = (
                {
                    row[0]
                    for row in rows(
                        newest_values("%(candidate_ids)s"), {**f.params, "candidate_ids": ids}
                    )
                }
                if ids
                else set()
            )
            return [(key, row_id, None) for row_id, key in candidates if row_id not in valued]

        return _in_stretches(count, after, along, without_values, without_value)

    def without_value(after: tuple[Any, str] | None, count: int) -> list[tuple[Any, str, None]]:
        # The name's newest values, all of them: restricting them to the window's rows
        # rolled those up twice, which cost more (docs/benchmarks.md).
        values = newest_values(None)
        kept = f"{f.sql()} AND {id_column} NOT IN (SELECT target_id FROM ({values}))"
        if after is not None:
            kept += (
                f" AND ({time_column}, {id_column}) < ({f.param(after[0])}, {f.param(after[1])})"
            )
        found = rows(
            f"SELECT {id_column}, {time_column} FROM {source} AS listed WHERE {kept}"
            f" ORDER BY {time_column} DESC, {id_column} DESC LIMIT {f.param(count)}",
            f.params,
        )
        return [(key, row_id, None) for row_id, key in found]

    return score_sorts.pick(kind, sort, limit, cursor, by_value, unscored, where=where)


Candidates = list[tuple[Any, ...]]
Found = list[tuple[Any, str, None]]


def _in_stretches(
    count: int,
    after: tuple[Any, str] | None,
    stretch_of: Callable[[tuple[Any, str] | None, int], Candidates | None],
    kept_of: Callable[[Candidates], Found],
    rest: Callable[[tuple[Any, str] | None, int], Found],
) -> Found:
    """Up to ``count`` rows: stretches of (id, key) candidates in the list's order after
    ``after`` (``stretch_of``; None: it cannot tell them), each kept by ``kept_of``,
    until the page is full or the candidates end; when none can be told, or at the
    rate rows have been kept so far the stretches left would not fill the page, the
    rest of the page is ``rest``'s, read after the last candidate."""
    found: Found = []
    stretch = max(STRETCH_PER_ROW * count, MIN_STRETCH)
    read = 0
    for left in range(STRETCHES - 1, -1, -1):
        candidates = stretch_of(after, stretch)
        if candidates is None:
            break
        read += len(candidates)
        found += kept_of(candidates)
        if len(found) >= count:
            return found[:count]
        if len(candidates) < stretch:
            return found
        after = (candidates[-1][1], candidates[-1][0])
        stretch = min(stretch * 4, MAX_STRETCH)
        if (count - len(found)) * read > len(found) * stretch * left:
            break
    return found + rest(after, count - len(found))
