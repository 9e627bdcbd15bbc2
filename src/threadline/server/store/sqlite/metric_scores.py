"""The dashboard's score averages per bucket on SQLite (migration 0028): each numeric
score rollup counts in the hour its target (trace or session) started, and
``metric_scores`` holds each (project, hour, score name)'s value sum and count.

The rule is the amounts' (``store/metrics.py``): a rollup counts once, in the hour its
target starts in (a start in an hour's last sub-microsecond counts in the next), only
while its target is stored, and in no hour when the target ends before that hour
begins (a target active in no bucket). It is the rule the rollup join of the filtered
views (``metrics._scores``) applies, so the unfiltered dashboard reads the same figures.

Each rollup keeps its target's hour (``score_rollups.target_hour``, NULL while the
target is not stored), so what a rollup counted in is known without reading its
target. Whenever a rollup or its target's hour changes, what it counted is taken back
from the hour it left and added to the hour it joined: one row each, whatever the hour
holds. The sums are kept in fixed point so that adding and taking back is exact: a
rollup's value sum counts as its whole part and its billionths (``units``: the part
after the point rounded to the nearest 1e-9, half away from zero), each summed as an
integer (migration 0032). An hour's sum is then the sum of its rollups' units, the same
whatever was written, replaced or deleted before, and the average the dashboard shows
is within 5e-10 of the float sum's (a score below that magnitude counts as 0). Exact
while an hour's whole part stays within ±9.2e18 (9,223 scores of ±1e15 on one name in
one hour); past that, SQLite's integer overflow turns the sum into a float.

What moves a target's hour: a trace or session first stored, a later export starting
earlier (a score often arrives before the spans it names), a session emptied of its
traces; ``metric_upkeep.Changes`` collects them with a batch's other changes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping

from threadline.server.store.metrics import WIDTH_NS, Range
from threadline.server.store.sqlite.chunked import select_in
from threadline.server.store.sqlite.driver import sqlite3

HOUR_NS = WIDTH_NS["hour"]

# A bucket ends at its last microsecond: a start in the sub-microsecond after it counts
# in the next hour (as ``metric_upkeep.SLACK_NS``).
_SLACK_NS = 999

# A (kind, target id) and the hour its scores now count in (None: in none).
Moves = Mapping[tuple[str, str], int | None]

# A rollup's sum in fixed point, in SQL: the migration fills the sums with it, and
# ``units`` gives the same integers (the same IEEE operations, then truncation).
UNITS_SQL = (
    "CAST(value_sum AS INTEGER)",
    "CAST((value_sum - CAST(value_sum AS INTEGER)) * 1e9"
    " + (CASE WHEN value_sum < 0 THEN -0.5 ELSE 0.5 END) AS INTEGER)",
)
_BILLION = 10**9

# What a change adds to (or takes back from) each (hour, name): [count, whole, nanos].
Deltas = dict[tuple[int, str], list[int]]

_ADDED = (
    "INSERT INTO metric_scores"
    " (project_id, hour, name, value_count, value_whole, value_nanos) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (project_id, hour, name) DO UPDATE SET"
    " value_count = value_count + excluded.value_count,"
    " value_whole = value_whole + excluded.value_whole,"
    " value_nanos = value_nanos + excluded.value_nanos"
)
# Each target looked up by its key, the ids' list first (``CROSS JOIN`` keeps that
# order). Written as ``session_id IN (...)``, the planner (no ``sqlite_stat1``) took the
# Sessions list's index by cost, which holds every column read here, and read all of the
# project's entries in it for each score write (docs/benchmarks.md, round 16).
_TARGET_HOURS = {
    "trace": (
        "SELECT k.trace_id, t.start_ns, t.end_ns FROM json_each(?) AS wanted"
        " CROSS JOIN trace_keys AS k ON k.project_id = ? AND k.trace_id = wanted.value"
        " CROSS JOIN traces AS t ON t.trace_key = k.key"
    ),
    "session": (
        "SELECT s.session_id, s.start_ns, s.end_ns FROM json_each(?) AS wanted"
        " CROSS JOIN sessions AS s ON s.project_id = ? AND s.session_id = wanted.value"
    ),
}

# Whether a rollup of the project waits for its target, from migration 0034's partial
# index, which holds only those: left to itself, the planner (no ``sqlite_stat1``)
# took the primary key by project and read every rollup of the project, at each write
# that brought a trace or session new to the store (docs/benchmarks.md, round 16).
_ANY_WAITING = (
    "SELECT 1 FROM score_rollups INDEXED BY score_rollups_waiting"
    " WHERE project_id = ? AND target_hour IS NULL LIMIT 1"
)


def hour_of(start_ns: int, end_ns: int) -> int | None:
    """The hour a target's scores count in: the one it starts in, unless it ends before
    that hour begins (then it is active in no bucket, and its scores count nowhere)."""
    first = (start_ns + _SLACK_NS) // HOUR_NS
    return first if end_ns // HOUR_NS >= first else None


def target_hours(
    conn: sqlite3.Connection, project_id: int, kind: str, ids: Collection[str]
) -> dict[str, int | None]:
    """The hour of each stored target of ``kind`` among ``ids`` (absent: not stored)."""
    return {
        target_id: hour_of(start_ns, end_ns)
        for target_id, start_ns, end_ns in conn.execute(
            _TARGET_HOURS[kind], (json.dumps(sorted(set(ids))), project_id)
        )
    }


def units(value_sum: float) -> tuple[int, int]:
    """``value_sum`` in fixed point: its whole part (toward zero) and the rest in
    billionths, rounded half away from zero (``UNITS_SQL``, operation for operation)."""
    whole = int(value_sum)
    rest = value_sum - whole  # exact: the two share their sign and leading bits
    return whole, int(rest * 1e9 + (-0.5 if value_sum < 0 else 0.5))


def count(
    deltas: Deltas,
    hour: int | None,
    name: str,
    value_count: int,
    value_sum: float | None,
    sign: int,
) -> None:
    """Add (``sign`` 1) or take back (-1) a rollup's numeric values in ``hour``."""
    if hour is None or not value_count:
        return
    whole, nanos = units(value_sum or 0.0)
    cell = deltas.setdefault((hour, name), [0, 0, 0])
    cell[0] += sign * value_count
    cell[1] += sign * whole
    cell[2] += sign * nanos


def targets_moved(
    conn: sqlite3.Connection, project_id: int, moves: Moves, stored: Collection[tuple[str, str]]
) -> None:
    """Give the rollups of targets whose hour may have changed (``moves``) their new
    hour, and move what they count from the hour they left to the one they joined.
    ``stored``: those of them stored before; the others are new to the store, so a
    rollup of theirs waits for its target (``target_hour`` NULL): when the project has
    no such rollup (migration 0034's index finds none), they are not looked up one by
    one (at ingest, every new trace and session)."""
    if len(stored) < len(moves) and (conn.execute(_ANY_WAITING, (project_id,)).fetchone() is None):
        moves = {key: moves[key] for key in stored if key in moves}
    by_kind: dict[str, list[str]] = {}
    for kind, target_id in moves:
        by_kind.setdefault(kind, []).append(target_id)
    deltas: Deltas = {}
    updates: list[tuple[int | None, int, str, str, str]] = []
    for kind, ids in sorted(by_kind.items()):
        for target_id, name, hour, value_count, value_sum in select_in(
            conn,
            "SELECT target_id, name, target_hour, value_count, value_sum FROM score_rollups"
            " WHERE project_id = ? AND target_kind = ? AND target_id IN ({})",
            (project_id, kind),
            sorted(ids),
        ):
            new = moves[(kind, target_id)]
            if hour == new:
                continue
            updates.append((new, project_id, kind, target_id, name))
            count(deltas, hour, name, value_count, value_sum, -1)
            count(deltas, new, name, value_count, value_sum, 1)
    conn.executemany(
        "UPDATE score_rollups SET target_hour = ? WHERE project_id = ? AND target_kind = ?"
        " AND target_id = ? AND name = ?",
        updates,
    )
    add(conn, project_id, deltas)


def add(conn: sqlite3.Connection, project_id: int, deltas: Deltas) -> None:
    """Add ``deltas`` to their hours' sums (a row made for an hour's first rollup; an
    hour left with none keeps a row counting none, which the read skips)."""
    conn.executemany(
        _ADDED,
        [
            (project_id, hour, name, *cell)
            for (hour, name), cell in sorted(deltas.items())
            if any(cell)
        ],
    )


def read(conn: sqlite3.Connection, project_id: int, span: Range) -> list[tuple]:
    """(name, group, bucket, value sum, value count) of the scores whose targets started
    in ``span``, a row per hour (in hour order: a day's sums are added the same way)."""
    first_hour, last_hour = span.origin // HOUR_NS, span.end // HOUR_NS - 1
    return [
        (
            name,
            None,
            (hour * HOUR_NS - span.origin) // span.width,
            (whole * _BILLION + nanos) / _BILLION,  # the float nearest the exact sum
            value_count,
        )
        for hour, name, value_count, whole, nanos in conn.execute(
            "SELECT hour, name, value_count, value_whole, value_nanos FROM metric_scores"
            " WHERE project_id = ? AND hour BETWEEN ? AND ? AND value_count > 0",
            (project_id, first_hour, last_hour),
        )
    ]
