"""Scores, score rollups, score configurations, notes and allowed origins in SQLite.

Functions over a connection, called by ``SQLiteStore`` inside its write transaction or
on a reader connection; the rules themselves (what a summary is) live in
``store/score_rollups.py``, shared with the other backends.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from threadline.server.model import (
    Note,
    NoteIn,
    Page,
    Score,
    ScoreConfig,
    ScoreFilter,
    ScoreQuery,
    ScoreRecord,
    ScoreSummary,
    stored_config,
)
from threadline.server.scoring import score as present_score
from threadline.server.store import cursors, sorts
from threadline.server.store.base import StoredNote
from threadline.server.store.columns import Columns
from threadline.server.store.name_types import NameTypes
from threadline.server.store.record_columns import (
    NOTES,
    SCORE_CONFIGS,
    SCORE_ROLLUPS,
    SCORES,
    new_note,
)
from threadline.server.store.record_columns import note as present_note
from threadline.server.store.score_rollups import (
    ScoreRollup,
    merge_summaries,
    roll_up_scores,
)
from threadline.server.store.sqlite import metric_scores
from threadline.server.store.sqlite.chunked import select_in
from threadline.server.store.sqlite.driver import sqlite3

# A score row: the project, the record, and the target it rolls up into.
_SCORE_ROW = Columns("project_id") + SCORES + Columns("target_kind", "target_id")
_UPSERT_SCORE = f"INSERT OR REPLACE INTO scores ({_SCORE_ROW.sql}) VALUES ({_SCORE_ROW.qmarks})"
# A rollup row: the project, the record, its average (kept for the filters' index) and
# the hour its target started in (metric_scores.py).
_ROLLUP_ROW = Columns("project_id") + SCORE_ROLLUPS + Columns("average", "target_hour")
_CONFIG_ROW = Columns("project_id") + SCORE_CONFIGS
_NOTE_ROW = Columns("project_id") + NOTES


# A score read with its target's id, for the rollups.
_TARGETED = SCORES + Columns("target_id")


def _record(row: Sequence[Any]) -> ScoreRecord:
    return SCORES.read(row, ScoreRecord)


# --- writes ----------------------------------------------------------------------------


def write(
    conn: sqlite3.Connection,
    project_id: int,
    records: Sequence[ScoreRecord],
    check_types: bool = True,
) -> None:
    """Upsert ``records`` and recompute the rollup of every (target, name) they leave or
    join. Runs inside the caller's write transaction, which makes the type check
    (``name_types.py``: ``Conflict``, nothing written) and the write one step: no other
    writer can give a new name another type in between."""
    if check_types:
        NameTypes(
            lambda name: stored_type(conn, project_id, name),
            configured_types(conn, project_id, {r.name for r in records}),
        ).check(records)
    latest: dict[str, ScoreRecord] = {}
    for record in records:  # the last of one id in a batch wins, as separate writes would
        latest[record.id] = record
    stored = get(conn, project_id, list(latest))
    touched: set[tuple[str, str, str]] = set()
    rows = []
    for record in latest.values():
        before = stored.get(record.id)
        if before is not None and before.same_score(record):
            continue
        if before is not None:
            touched.add((*before.target, before.name))
        touched.add((*record.target, record.name))
        rows.append((project_id, *SCORES.values(record), *record.target))
    conn.executemany(_UPSERT_SCORE, rows)
    refresh(conn, project_id, touched)


def delete(conn: sqlite3.Connection, project_id: int, score_id: str) -> bool:
    before = get(conn, project_id, [score_id]).get(score_id)
    if before is None:
        return False
    conn.execute("DELETE FROM scores WHERE project_id = ? AND id = ?", (project_id, score_id))
    refresh(conn, project_id, {(*before.target, before.name)})
    return True


def refresh(
    conn: sqlite3.Connection, project_id: int, touched: Iterable[tuple[str, str, str]]
) -> None:
    """Recompute the rollups of ``touched`` (target kind, target id, name) from their
    scores; a rollup left with no score is removed. One read per (kind, name) and chunk
    of targets, not one per target: a batch of feedback touches hundreds. What the
    numeric ones count on the dashboard moves with them (``metric_scores``: the old
    rollup taken back from its hour, the new one added to its)."""
    targets: dict[tuple[str, str], list[str]] = defaultdict(list)
    for kind, target_id, name in touched:
        targets[(kind, name)].append(target_id)
    upserts: list[tuple[ScoreRollup, int | None]] = []  # with the hour they count in
    removals: list[tuple[Any, ...]] = []
    deltas: metric_scores.Deltas = {}
    unplaced: dict[str, set[str]] = defaultdict(set)  # kind -> targets without a rollup
    for (kind, name), ids in sorted(targets.items()):
        found: dict[str, list[ScoreRecord]] = defaultdict(list)
        for row in select_in(
            conn,
            f"SELECT {_TARGETED.sql} FROM scores WHERE project_id = ?"
            " AND target_kind = ? AND name = ? AND target_id IN ({})",
            (project_id, kind, name),
            sorted(ids),
        ):
            found[_TARGETED.named(row)["target_id"]].append(_record(row))
        # The hour each rollup counts in now (kept as it is), and what it counts there.
        before = {
            target_id: (hour, value_count, value_sum)
            for target_id, hour, value_count, value_sum in select_in(
                conn,
                "SELECT target_id, target_hour, value_count, value_sum FROM score_rollups"
                " WHERE project_id = ? AND target_kind = ? AND name = ? AND target_id IN ({})",
                (project_id, kind, name),
                sorted(ids),
            )
        }
        for target_id in ids:
            hour, value_count, value_sum = before.get(target_id, (None, 0, None))
            metric_scores.count(deltas, hour, name, value_count, value_sum, -1)
            rollup = roll_up_scores(kind, target_id, name, found.get(target_id, ()))
            if rollup is None:
                removals.append((project_id, kind, target_id, name))
                continue
            if target_id not in before:
                unplaced[kind].add(target_id)
            upserts.append((rollup, hour))
    # A new rollup counts in its target's hour, if its target is stored.
    placed = {
        kind: metric_scores.target_hours(conn, project_id, kind, ids)
        for kind, ids in unplaced.items()
    }
    rows = []
    for rollup, kept_hour in upserts:
        hour = (
            placed[rollup.target_kind].get(rollup.target_id)
            if rollup.target_id in unplaced.get(rollup.target_kind, ())
            else kept_hour
        )
        metric_scores.count(deltas, hour, rollup.name, rollup.value_count, rollup.value_sum, 1)
        rows.append((project_id, *SCORE_ROLLUPS.values(rollup), rollup.average, hour))
    conn.executemany(
        "DELETE FROM score_rollups WHERE project_id = ? AND target_kind = ?"
        " AND target_id = ? AND name = ?",
        removals,
    )
    conn.executemany(
        f"INSERT OR REPLACE INTO score_rollups ({_ROLLUP_ROW.sql}) VALUES ({_ROLLUP_ROW.qmarks})",
        rows,
    )
    metric_scores.add(conn, project_id, deltas)


def stored_type(conn: sqlite3.Connection, project_id: int, name: str) -> str | None:
    """The type ``name``'s newest score holds (``scores_by_name``), or None."""
    row = conn.execute(
        "SELECT data_type FROM scores WHERE project_id = ? AND name = ?"
        " ORDER BY created_ns DESC, id DESC LIMIT 1",
        (project_id, name),
    ).fetchone()
    return row[0] if row else None


def configured_types(
    conn: sqlite3.Connection, project_id: int, names: Iterable[str]
) -> dict[str, str]:
    """The configured type of each of ``names`` that has a configuration."""
    return dict(
        select_in(
            conn,
            "SELECT name, data_type FROM score_configs WHERE project_id = ? AND name IN ({})",
            (project_id,),
            sorted(names),
        )
    )


# --- reads -----------------------------------------------------------------------------


def get(conn: sqlite3.Connection, project_id: int, ids: Sequence[str]) -> dict[str, ScoreRecord]:
    records = (
        _record(row)
        for row in select_in(
            conn,
            f"SELECT {SCORES.sql} FROM scores WHERE project_id = ? AND id IN ({{}})",
            (project_id,),
            list(ids),
        )
    )
    return {record.id: record for record in records}


def list_scores(conn: sqlite3.Connection, project_id: int, query: ScoreQuery) -> Page[Score]:
    """The scores ``query`` picks, newest first. A session's (``session_id``) are those
    written with its id and those on its traces (found by ``traces_by_session``), however
    they were written: a turn's score written with its trace id alone is the session's
    too, whether it came before or after the trace."""
    where: list[str] = []
    args: list[Any] = []
    source = "scores"
    source_args: list[Any] = []
    if query.trace_ids:
        # The turns' traces' scores looked up by each trace, the ids' list first
        # (``CROSS JOIN`` keeps that order), then sorted. Written as ``trace_id IN
        # (...)``, the planner (no ``sqlite_stat1``) walked the index by time, every
        # score of the project newest first, to skip the sort (docs/benchmarks.md,
        # round 16).
        source = "json_each(?) AS wanted CROSS JOIN scores ON scores.trace_id = wanted.value"
        source_args.append(json.dumps(sorted({t.lower() for t in query.trace_ids})))
    # A session's or trace's scores are few: read by their index, the name checked on
    # each (``+name`` keeps the planner off scores_by_name, which it would otherwise
    # take, walking all of a name's scores newest first to find a session's).
    by_target = bool(query.session_id or query.trace_id or query.trace_ids)
    for column in ("trace_id", "span_id", "name", "source"):
        value = getattr(query, column)
        if value:
            where.append(
                f"+scores.{column} = ?"
                if column == "name" and by_target
                else f"scores.{column} = ?"
            )
            args.append(value.lower() if column in ("trace_id", "span_id") else value)
    if query.cursor:
        created_ns, score_id = cursors.decode(
            query.cursor, int, str, made_by=sorts.SCORES_BY_CREATION
        )
        where.append("(scores.created_ns, scores.id) < (?, ?)")
        args += [created_ns, score_id]
    columns = SCORES.qualified("scores")
    rest = "".join(f" AND {w}" for w in where)
    if query.session_id and query.session_own:
        sql = (
            f"SELECT {columns} FROM {source} WHERE scores.project_id = ?"
            f" AND scores.session_id = ? AND scores.trace_id IS NULL{rest}"
            " ORDER BY scores.created_ns DESC, scores.id DESC LIMIT ?"
        )
        params = [*source_args, project_id, query.session_id, *args, query.limit + 1]
    elif query.session_id:
        # Two reads by index, each as far as the page: the scores written on the session,
        # and the scores of each of its traces (the session's traces first, ``CROSS
        # JOIN`` keeping them the outer loop). UNION drops a score both find.
        sql = (
            f"SELECT {columns} FROM {source} WHERE scores.project_id = ?"
            f" AND scores.session_id = ?{rest}"
            " UNION "
            f"SELECT {columns} FROM traces INDEXED BY traces_by_session"
            " CROSS JOIN scores ON scores.project_id = traces.project_id"
            " AND scores.trace_id = traces.trace_id"
            f" WHERE traces.project_id = ? AND traces.session_id = ?{rest}"
            " ORDER BY created_ns DESC, id DESC LIMIT ?"
        )
        if query.trace_ids:
            sql = sql.replace(
                "traces INDEXED BY traces_by_session CROSS JOIN scores",
                "traces INDEXED BY traces_by_session CROSS JOIN scores"
                " JOIN json_each(?) AS wanted ON scores.trace_id = wanted.value",
            )
        params = [
            *source_args,
            project_id,
            query.session_id,
            *args,
            *source_args,
            project_id,
            query.session_id,
            *args,
            query.limit + 1,
        ]
    else:
        sql = (
            f"SELECT {columns} FROM {source} WHERE scores.project_id = ?{rest}"
            " ORDER BY scores.created_ns DESC, scores.id DESC LIMIT ?"
        )
        params = [*source_args, project_id, *args, query.limit + 1]
    records = [_record(row) for row in conn.execute(sql, params).fetchall()]
    page, next_cursor = cursors.page(
        records, query.limit, lambda r: (r.created_ns, r.id), made_by=sorts.SCORES_BY_CREATION
    )
    return Page[Score](items=[present_score(r) for r in page], next_cursor=next_cursor)


def _rollup(row: Sequence[Any]) -> ScoreRollup:
    return SCORE_ROLLUPS.read(row, ScoreRollup)


def summaries(
    conn: sqlite3.Connection, project_id: int, kind: str, ids: Sequence[str]
) -> dict[str, dict[str, ScoreSummary]]:
    """Per target id of ``kind``, its summary per score name (the page's rows only)."""
    out: dict[str, dict[str, ScoreSummary]] = defaultdict(dict)
    for row in select_in(
        conn,
        f"SELECT {SCORE_ROLLUPS.sql} FROM score_rollups WHERE project_id = ?"
        " AND target_kind = ? AND target_id IN ({})",
        (project_id, kind),
        list(ids),
    ):
        rollup = _rollup(row)
        out[rollup.target_id][rollup.name] = rollup.summary()
    # Names in order, sorted here: an ORDER BY name led SQLite to walk the whole
    # (kind, name) index instead of the page's primary keys.
    return {target: dict(sorted(names.items())) for target, names in out.items()}


def user_summaries(
    conn: sqlite3.Connection,
    project_id: int,
    user_ids: Sequence[str],
    start_ns: int | None = None,
    end_ns: int | None = None,
    index: str = "traces_by_user",
) -> dict[str, dict[str, ScoreSummary]]:
    """Per user, the summaries of the scores on their traces active in [start, end]
    (either may be None: unbounded) and on the sessions those traces are in, merged per
    name (the page's users only; reads rollups). Their traces are found along ``index``
    (``user_list.py`` chooses): left to itself, given a window, the planner took the
    range by start, every trace begun before the window's end, for a page's."""
    columns = SCORE_ROLLUPS.qualified("r")
    window = ""
    window_args: list[int] = []
    if start_ns is not None:
        window += " AND t.end_ns >= ?"
        window_args.append(start_ns)
    if end_ns is not None:
        window += " AND t.start_ns <= ?"
        window_args.append(end_ns)
    by_user: dict[str, list[ScoreRollup]] = defaultdict(list)
    for sql in (
        (
            f"SELECT t.user_id, {columns} FROM traces t INDEXED BY {index}"
            " JOIN score_rollups r"
            " ON r.project_id = t.project_id AND r.target_kind = 'trace'"
            f" AND r.target_id = t.trace_id WHERE t.project_id = ?{window}"
            " AND t.user_id IN ({})"
        ),
        (
            f"SELECT u.user_id, {columns} FROM (SELECT DISTINCT project_id, user_id, session_id"
            f" FROM traces t INDEXED BY {index} WHERE project_id = ?{window}"
            " AND session_id IS NOT NULL"
            " AND user_id IN ({})) u"
            " JOIN score_rollups r ON r.project_id = u.project_id AND r.target_kind = 'session'"
            " AND r.target_id = u.session_id"
        ),
    ):
        for user_id, *rollup in select_in(conn, sql, (project_id, *window_args), list(user_ids)):
            by_user[user_id].append(_rollup(rollup))
    return {user: merge_summaries(rollups) for user, rollups in by_user.items()}


def filter_conditions(
    kind: str, id_column: str, project_column: str, filters: Sequence[ScoreFilter]
) -> tuple[list[str], list[Any]]:
    """SQL conditions on a row of sessions or traces for each score filter: a lookup in
    ``score_rollups`` by primary key (or its value index), never a scan of scores."""
    where: list[str] = []
    args: list[Any] = []
    for f in filters:
        exists = (
            "EXISTS (SELECT 1 FROM score_rollups r WHERE r.project_id = "
            f"{project_column} AND r.target_kind = ? AND r.target_id = {id_column}"
            " AND r.name = ?"
        )
        if f.missing:
            where.append("NOT " + exists + ")")
            args += [kind, f.name]
        elif isinstance(f.value, str):
            where.append(exists + f" AND r.label {'=' if f.op == '=' else '!='} ?)")
            args += [kind, f.name, f.value]
        else:
            op = "=" if f.op == "=" else f.op
            where.append(exists + f" AND r.average {op} ?)")
            args += [kind, f.name, f.value]
    return where, args


# --- configurations, notes, origins ----------------------------------------------------


def list_configs(conn: sqlite3.Connection, project_id: int) -> list[ScoreConfig]:
    return [
        SCORE_CONFIGS.read(row, stored_config, labels=json.loads)
        for row in conn.execute(
            f"SELECT {SCORE_CONFIGS.sql} FROM score_configs WHERE project_id = ? ORDER BY name",
            (project_id,),
        )
    ]


def put_config(conn: sqlite3.Connection, project_id: int, c: ScoreConfig) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO score_configs ({_CONFIG_ROW.sql}) VALUES ({_CONFIG_ROW.qmarks})",
        (project_id, *SCORE_CONFIGS.values(c, labels=json.dumps)),
    )


def delete_config(conn: sqlite3.Connection, project_id: int, name: str) -> bool:
    cursor = conn.execute(
        "DELETE FROM score_configs WHERE project_id = ? AND name = ?", (project_id, name)
    )
    return cursor.rowcount > 0


def add_note(conn: sqlite3.Connection, project_id: int, note: NoteIn, now_ns: int) -> Note:
    stored = new_note(note, now_ns)
    load_notes(conn, project_id, [stored])
    return present_note(stored)


def list_notes(conn: sqlite3.Connection, project_id: int, session_id: str) -> list[Note]:
    return [
        present_note(NOTES.read(row, StoredNote))
        for row in conn.execute(
            f"SELECT {NOTES.sql} FROM notes WHERE project_id = ? AND session_id = ?"
            " ORDER BY created_ns, id",
            (project_id, session_id),
        )
    ]


def delete_note(conn: sqlite3.Connection, project_id: int, note_id: str) -> bool:
    cursor = conn.execute(
        "DELETE FROM notes WHERE project_id = ? AND id = ?", (project_id, note_id)
    )
    return cursor.rowcount > 0


def allowed_origins(conn: sqlite3.Connection, project_id: int) -> list[str]:
    row = conn.execute(
        "SELECT allowed_origins FROM projects WHERE id = ?", (project_id,)
    ).fetchone()
    return json.loads(row[0]) if row else []


def set_allowed_origins(conn: sqlite3.Connection, project_id: int, origins: Sequence[str]) -> None:
    conn.execute(
        "UPDATE projects SET allowed_origins = ? WHERE id = ?",
        (json.dumps(sorted(set(origins))), project_id),
    )


# --- migration ---------------------------------------------------------------------------


def iter_records(
    conn: sqlite3.Connection, after: tuple[int, str], batch_size: int
) -> list[tuple[int, ScoreRecord]]:
    """The next ``batch_size`` scores after (project, id), in that order."""
    return [
        (project_id, _record(record))
        for project_id, *record in conn.execute(
            f"SELECT project_id, {SCORES.sql} FROM scores WHERE (project_id, id) > (?, ?)"
            " ORDER BY project_id, id LIMIT ?",
            (*after, batch_size),
        )
    ]


def stored_notes(conn: sqlite3.Connection, project_id: int) -> list[StoredNote]:
    return [
        NOTES.read(row, StoredNote)
        for row in conn.execute(
            f"SELECT {NOTES.sql} FROM notes WHERE project_id = ? ORDER BY created_ns, id",
            (project_id,),
        )
    ]


def load_notes(conn: sqlite3.Connection, project_id: int, notes: Sequence[StoredNote]) -> None:
    """Insert notes as they are, ids included; a note stored already is left alone."""
    conn.executemany(
        f"INSERT OR IGNORE INTO notes ({_NOTE_ROW.sql}) VALUES ({_NOTE_ROW.qmarks})",
        [(project_id, *NOTES.values(n)) for n in notes],
    )
