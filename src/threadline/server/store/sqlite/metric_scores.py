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
target. Whenever a rollup or its target's hour changes, the hours it left and joined
are marked, and each marked (hour, name) is summed again from its rollups, read down
``score_rollups_by_hour`` in value order: a bucket's sum is a function of the rollups
in it, whatever was written, replaced or deleted before (adding and taking back floats
would drift). Scores are written rarely, and an hour holds few of a name's rollups.

What moves a target's hour: a trace or session first stored, a later export starting
earlier (a score often arrives before the spans it names), a session emptied of its
traces; ``metric_upkeep.Changes`` collects them with a batch's other changes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from threadline.server.store.metrics import WIDTH_NS, Range
from threadline.server.store.sqlite.chunked import select_in
from threadline.server.store.sqlite.driver import sqlite3

HOUR_NS = WIDTH_NS["hour"]

# A bucket ends at its last microsecond: a start in the sub-microsecond after it counts
# in the next hour (as ``metric_upkeep.SLACK_NS``).
_SLACK_NS = 999

# A (kind, target id) and the hour its scores now count in (None: in none).
Moves = Mapping[tuple[str, str], int | None]

# One (hour, name) summed again: always a row (an hour left with no numeric rollup
# keeps one counting none, which the read skips), so one statement a bucket.
_SUMMED = (
    "INSERT OR REPLACE INTO metric_scores (project_id, hour, name, value_count, value_sum)"
    " SELECT ?, ?, ?, COALESCE(SUM(value_count), 0), COALESCE(SUM(value_sum), 0.0)"
    " FROM score_rollups INDEXED BY score_rollups_by_hour"
    " WHERE project_id = ? AND target_hour = ? AND name = ? AND value_count > 0"
)
_TARGET_HOURS = {
    "trace": (
        "SELECT k.trace_id, t.start_ns, t.end_ns FROM trace_keys AS k"
        " CROSS JOIN traces AS t ON t.trace_key = k.key"
        " WHERE k.project_id = ? AND k.trace_id IN ({})"
    ),
    "session": (
        "SELECT session_id, start_ns, end_ns FROM sessions"
        " WHERE project_id = ? AND session_id IN ({})"
    ),
}


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
        for target_id, start_ns, end_ns in select_in(
            conn, _TARGET_HOURS[kind], (project_id,), sorted(ids)
        )
    }


def targets_moved(conn: sqlite3.Connection, project_id: int, moves: Moves) -> None:
    """Give the rollups of targets whose hour may have changed (``moves``) their new
    hour, and sum again the hours they left and joined."""
    by_kind: dict[str, list[str]] = {}
    for kind, target_id in moves:
        by_kind.setdefault(kind, []).append(target_id)
    marked: set[tuple[int, str]] = set()
    updates: list[tuple[int | None, int, str, str, str]] = []
    for kind, ids in sorted(by_kind.items()):
        for target_id, name, hour, value_count in select_in(
            conn,
            "SELECT target_id, name, target_hour, value_count FROM score_rollups"
            " WHERE project_id = ? AND target_kind = ? AND target_id IN ({})",
            (project_id, kind),
            sorted(ids),
        ):
            new = moves[(kind, target_id)]
            if hour == new:
                continue
            updates.append((new, project_id, kind, target_id, name))
            if value_count:
                marked.update((h, name) for h in (hour, new) if h is not None)
    conn.executemany(
        "UPDATE score_rollups SET target_hour = ? WHERE project_id = ? AND target_kind = ?"
        " AND target_id = ? AND name = ?",
        updates,
    )
    sum_again(conn, project_id, marked)


def sum_again(conn: sqlite3.Connection, project_id: int, marked: Iterable[tuple[int, str]]) -> None:
    """Sum each (hour, name) of ``marked`` again from its rollups."""
    conn.executemany(_SUMMED, [(project_id, hour, name) * 2 for hour, name in sorted(set(marked))])


def read(conn: sqlite3.Connection, project_id: int, span: Range) -> list[tuple]:
    """(name, group, bucket, value sum, value count) of the scores whose targets started
    in ``span``, a row per hour (in hour order: a day's sums are added the same way)."""
    first_hour, last_hour = span.origin // HOUR_NS, span.end // HOUR_NS - 1
    return [
        (name, None, (hour * HOUR_NS - span.origin) // span.width, value_sum, value_count)
        for hour, name, value_count, value_sum in conn.execute(
            "SELECT hour, name, value_count, value_sum FROM metric_scores"
            " WHERE project_id = ? AND hour BETWEEN ? AND ? AND value_count > 0",
            (project_id, first_hour, last_hour),
        )
    ]
