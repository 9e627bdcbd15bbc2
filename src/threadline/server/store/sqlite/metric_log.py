"""The dashboard's aggregates (migration 0010) changed through logs (migration 0033).

A write appends its changes, a row per bucket it changed, to a log of each aggregate
(``metric_activity_log``, ``metric_user_day_log``, ``metric_model_log``): rows at the
log's end, on the page the write before it filled. Once a log holds ``FOLD_ROWS`` rows,
the write that filled it folds it into its aggregate: the log's rows added up per key,
upserted in key order, and the log emptied. Each upsert of a bucket's row used to put
its page in the WAL of every write: in a backfill, where nearly every row a write
changes is on a page of its own, that was ~90 pages a write of 51 sessions for the
WAL and the checkpointer to copy (docs/benchmarks.md, round 15). A fold changes a page
once for all the rows a log held on it.

An aggregate's figures are its rows plus its log's (``metric_aggregates.py`` reads
both). The activity and model sums are plain sums, whatever order the rows are added
in. A user's day is a row while a trace keeps the user active on it, and each day's
count of users (``metric_user_day_counts``) counts its rows: the fold adds to a day's
count the keys new to it that it makes rows of, and deletes the rows left with no
active trace (a trigger takes them off their day's count). The trigger that takes a
deleted trace back (0019) changes the aggregates' rows in place, so a delete of
traces folds the logs first (``fold_all``): then every user's day it takes a trace
from is a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from threadline.server.store.sqlite.driver import sqlite3

# A log is folded once it holds this many rows: a reader adds up its project's rows of
# the log on top of the aggregate's (a few ms at this size, at 1M spans), and a fold
# writes each page of the aggregate once for all of the log's rows on it. Folded more
# often, the hours' logs (a few dozen pages of aggregate) cost more than their upserts
# did: in a backfill their keys seldom repeat within a few hundred rows, so each fold
# upserts nearly as many rows as it was given (docs/benchmarks.md, round 15).
FOLD_ROWS = 4096

_ACTIVITY_COLUMNS = (
    "project_id, last_hour, first_hour, traces, error_traces, cost_traces, cost_pico,"
    " input_tokens, output_tokens, total_tokens, sessions, error_sessions, cost_sessions"
)
_USER_COLUMNS = (
    "project_id, day, user_id, traces_active, traces, error_traces, cost_traces, cost_pico"
)
_MODEL_COLUMNS = (
    "project_id, hour, model, traces, cost_traces, cost_pico, input_tokens, output_tokens,"
    " total_tokens"
)
_APPEND_ACTIVITY = f"INSERT INTO metric_activity_log ({_ACTIVITY_COLUMNS}) VALUES ({'?, ' * 12}?)"
_APPEND_USERS = f"INSERT INTO metric_user_day_log ({_USER_COLUMNS}) VALUES ({'?, ' * 7}?)"
_APPEND_MODELS = f"INSERT INTO metric_model_log ({_MODEL_COLUMNS}) VALUES ({'?, ' * 8}?)"


def _sums(columns: Sequence[str]) -> str:
    return ", ".join(f"SUM({c})" for c in columns)


def _added(columns: Sequence[str]) -> str:
    return ", ".join(f"{c} = {c} + excluded.{c}" for c in columns)


_ACTIVITY_SUMS = (
    "traces",
    "error_traces",
    "cost_traces",
    "cost_pico",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "sessions",
    "error_sessions",
    "cost_sessions",
)
_USER_SUMS = ("traces_active", "traces", "error_traces", "cost_traces", "cost_pico")
_MODEL_SUMS = (
    "traces",
    "cost_traces",
    "cost_pico",
    "input_tokens",
    "output_tokens",
    "total_tokens",
)

# ``WHERE true``: an upsert's SELECT needs a WHERE before its ON CONFLICT.
_FOLD_ACTIVITY = (
    f"INSERT INTO metric_activity ({_ACTIVITY_COLUMNS})"
    f" SELECT project_id, last_hour, first_hour, {_sums(_ACTIVITY_SUMS)}"
    " FROM metric_activity_log WHERE true GROUP BY project_id, last_hour, first_hour"
    f" ON CONFLICT DO UPDATE SET {_added(_ACTIVITY_SUMS)}"
)
_FOLD_MODELS = (
    f"INSERT INTO metric_models ({_MODEL_COLUMNS})"
    f" SELECT project_id, hour, model, {_sums(_MODEL_SUMS)}"
    " FROM metric_model_log WHERE true GROUP BY project_id, hour, model"
    f" ON CONFLICT DO UPDATE SET {_added(_MODEL_SUMS)}"
)
# The keys the fold makes rows of: active on the day once the log is added, and no
# row yet (a row holds at least one active trace).
_FOLD_USER_COUNTS = (
    "INSERT INTO metric_user_day_counts (project_id, day, users)"
    " SELECT l.project_id, l.day, COUNT(*) FROM (SELECT project_id, day, user_id"
    " FROM metric_user_day_log GROUP BY project_id, user_id, day"
    " HAVING SUM(traces_active) > 0) AS l"
    " WHERE NOT EXISTS (SELECT 1 FROM metric_user_days AS u WHERE u.project_id = l.project_id"
    " AND u.user_id = l.user_id AND u.day = l.day)"
    " GROUP BY l.project_id, l.day ON CONFLICT DO UPDATE SET users = users + excluded.users"
)
# A key whose rows add up to nothing was added and taken back within the log: not a
# row (nor one of its day's users).
_FOLD_USERS = (
    f"INSERT INTO metric_user_days ({_USER_COLUMNS})"
    f" SELECT project_id, day, user_id, {_sums(_USER_SUMS)}"
    " FROM metric_user_day_log WHERE true GROUP BY project_id, user_id, day"
    " HAVING "
    + " OR ".join(f"SUM({c}) != 0" for c in _USER_SUMS)
    + f" ON CONFLICT DO UPDATE SET {_added(_USER_SUMS)}"
)
_USERS_TAKEN_FROM = (
    "SELECT DISTINCT project_id, day, user_id FROM metric_user_day_log WHERE traces_active < 0"
)
# A user no trace keeps active on a day leaves it (and its count, by trigger: 0010).
_USERS_LEFT = (
    "DELETE FROM metric_user_days WHERE project_id = ? AND day = ? AND user_id = ?"
    " AND traces_active = 0"
)


def append(
    conn: sqlite3.Connection,
    activity: Sequence[Sequence[Any]],
    users: Sequence[Sequence[Any]],
    models: Sequence[Sequence[Any]],
) -> None:
    """Append a write's changes (rows in each log's columns, project first) and fold
    each log that has reached ``FOLD_ROWS`` rows."""
    for rows, text, log, fold in (
        (activity, _APPEND_ACTIVITY, "metric_activity_log", _fold_activity),
        (users, _APPEND_USERS, "metric_user_day_log", _fold_users),
        (models, _APPEND_MODELS, "metric_model_log", _fold_models),
    ):
        if rows:
            conn.executemany(text, rows)
            # Emptied by each fold, a log numbers its rows from 1 again.
            if conn.execute(f"SELECT MAX(rowid) FROM {log}").fetchone()[0] >= FOLD_ROWS:
                fold(conn)


def fold_all(conn: sqlite3.Connection) -> None:
    """Fold every log into its aggregate (before a delete of traces)."""
    for fold in (_fold_activity, _fold_users, _fold_models):
        fold(conn)


def _fold_activity(conn: sqlite3.Connection) -> None:
    conn.execute(_FOLD_ACTIVITY)
    conn.execute("DELETE FROM metric_activity_log")


def _fold_models(conn: sqlite3.Connection) -> None:
    conn.execute(_FOLD_MODELS)
    conn.execute("DELETE FROM metric_model_log")


def _fold_users(conn: sqlite3.Connection) -> None:
    left = conn.execute(_USERS_TAKEN_FROM).fetchall()
    conn.execute(_FOLD_USER_COUNTS)
    conn.execute(_FOLD_USERS)
    conn.executemany(_USERS_LEFT, left)
    conn.execute("DELETE FROM metric_user_day_log")
