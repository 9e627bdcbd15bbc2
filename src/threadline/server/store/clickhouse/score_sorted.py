"""The Sessions and Traces lists sorted by a score (``store/score_sorts.py``) in
ClickHouse: which rows a page holds, picked on their sort keys before they are rolled up
in full (as the store's other sorts pick theirs).

The score's values come from the newest rollups of that kind and name, a range of
``score_rollups``' primary key (project, kind, name, target): the scores of other names
are not read. The rows are those of the list's source (the window's sessions or
traces) that meet its filters; the scored part joins them to the values, the rest keeps
those without one, newest first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from threadline.server.model import ScoreSort
from threadline.server.store import score_sorts
from threadline.server.store.clickhouse.queries import Filters
from threadline.server.store.clickhouse.scores import ROLLUP_FIELDS, latest_rollups

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]


def pick(
    rows: Rows,
    f: Filters,
    source: str,
    kind: str,
    id_column: str,
    time_column: str,
    sort: ScoreSort,
    limit: int,
    cursor: str | None,
) -> list[score_sorts.Picked[None]]:
    """Up to ``limit + 1`` rows of ``source`` (a subquery with ``id_column`` and
    ``time_column``) meeting ``f``, sorted by ``sort``, after ``cursor``."""
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

    def scored(after: tuple[Any, str] | None, count: int) -> list[tuple[Any, str, None]]:
        where = f.sql()
        if after is not None:
            where += (
                f" AND (sort_key, {id_column}) {after_op}"
                f" ({f.param(after[0])}, {f.param(after[1])})"
            )
        found = rows(
            f"SELECT {id_column}, sort_key FROM {source} AS listed"
            f" INNER JOIN ({values}) AS ranked USING ({id_column}) WHERE {where}"
            f" ORDER BY sort_key {direction}, {id_column} {direction}"
            f" LIMIT {f.param(count)}",
            f.params,
        )
        return [(key, row_id, None) for row_id, key in found]

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

    return score_sorts.pick(sort, limit, cursor, scored, unscored)
