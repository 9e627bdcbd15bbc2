"""The Sessions and Traces lists sorted by a score (``store/score_sorts.py``) in
ClickHouse: which rows a page holds, picked on their sort keys before they are rolled up
in full (as the store's other sorts pick theirs).

The score's values come from the newest rollups of that kind and name, a range of
``score_rollups``' primary key (project, kind, name, target): the scores of other names
are not read. The scored part takes them in order a stretch at a time and rolls up
only the sessions or traces of the stretch, keeping those that meet the list's
filters, until the page is full; the rest (rows without a value) reads the list's
source (the window's sessions or traces, as the other sorts do) for those without one,
newest first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from threadline.server.model import ScoreSort
from threadline.server.store import score_sorts
from threadline.server.store.clickhouse.queries import Filters
from threadline.server.store.clickhouse.scores import ROLLUP_FIELDS, latest_rollups

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

# The first stretch of candidates rolled up: this many per row wanted, at least
# MIN_STRETCH (a stretch costs its rollups, and a filter may keep few of them); each
# next one four times longer, up to MAX_STRETCH ids (bound into the statement's text,
# which ClickHouse's max_query_size bounds). CANDIDATES: the values read at once.
STRETCH_PER_ROW = 4
MIN_STRETCH = 256
MAX_STRETCH = 1000
CANDIDATES = 10_000


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
) -> list[score_sorts.Picked[None]]:
    """Up to ``limit + 1`` rows meeting ``f``, sorted by ``sort``, after ``cursor``:
    ``source`` is the list's (a subquery with ``id_column`` and ``time_column``), and
    ``source_of(ids)`` the same rows of the ids a parameter holds only."""
    element = ROLLUP_FIELDS.index("average" if sort.by == "average" else "label") + 1
    rollups = latest_rollups(
        f"project_id = %(project)s AND target_kind = {f.param(kind)}"
        f" AND name = {f.param(sort.name)}"
    )
    values = (
        f"SELECT target_id AS {id_column}, tupleElement(row, {element}) AS sort_key"
        f" FROM ({rollups}) WHERE sort_key IS NOT NULL"
    )
    direction = "DESC" if sort.descending else "ASC"
    after_op = "<" if sort.descending else ">"

    def key_condition(op: str, key: tuple[Any, str] | None) -> str:
        if key is None:
            return "1"
        return f"(sort_key, {id_column}) {op} ({f.param(key[0])}, {f.param(key[1])})"

    def scored(after: tuple[Any, str] | None, count: int) -> list[tuple[Any, str, None]]:
        # The name's values are read once, in order, as far as CANDIDATES; the sessions
        # or traces they name are rolled up a stretch at a time (each four times the
        # last) and kept if the filters keep them, until the page is full.
        found: list[tuple[Any, str, None]] = []
        ordered = f"ORDER BY sort_key {direction}, {id_column} {direction}"
        while True:
            candidates = rows(
                f"SELECT {id_column}, sort_key FROM ({values})"
                f" WHERE {key_condition(after_op, after)} {ordered}"
                f" LIMIT {f.param(CANDIDATES)}",
                f.params,
            )
            at, stretch = 0, max(STRETCH_PER_ROW * count, MIN_STRETCH)
            while at < len(candidates):
                chunk = candidates[at : at + stretch]
                kept = {
                    row[0]
                    for row in rows(
                        f"SELECT {id_column} FROM {source_of('%(candidate_ids)s')} AS listed"
                        f" WHERE {f.sql()}",
                        {**f.params, "candidate_ids": [row_id for row_id, _ in chunk]},
                    )
                }
                found += [(key, row_id, None) for row_id, key in chunk if row_id in kept]
                if len(found) >= count:
                    return found[:count]
                at, stretch = at + len(chunk), min(stretch * 4, MAX_STRETCH)
            if len(candidates) < CANDIDATES:
                return found
            after = (candidates[-1][1], candidates[-1][0])

    def unscored(after: tuple[Any, str] | None, count: int) -> list[tuple[Any, str, None]]:
        where = f"{f.sql()} AND {id_column} NOT IN (SELECT {id_column} FROM ({values}))"
        if after is not None:
            where += (
                f" AND ({time_column}, {id_column}) < ({f.param(after[0])}, {f.param(after[1])})"
            )
        found = rows(
            f"SELECT {id_column}, {time_column} FROM {source} AS listed WHERE {where}"
            f" ORDER BY {time_column} DESC, {id_column} DESC LIMIT {f.param(count)}",
            f.params,
        )
        return [(key, row_id, None) for row_id, key in found]

    return score_sorts.pick(kind, sort, limit, cursor, scored, unscored, where=where)
