"""A SQLite store without what the dashboard adds to its writes: the "without" side of
``dashboard.py`` (a store in the benchmark's own process) and of ``dashboard_server.py``
(a whole server, through the ``without_dashboard`` hook of ``hooks/sitecustomize.py``),
defined once here so the two cannot drift apart.

What the dashboard adds: the triggers, aggregate tables and session index of 0010 (its
others dropped by 0017 and 0029), and the lists' session indexes as 0017 and 0029
widened them to cover its reads; each trace's usage by model, kept in its row since
0017; and the upkeep of the aggregates by the trace and session writes.

Not the traces' index by their end (0007's, narrowed by 0025), though the dashboard
brought it and its narrowed and grouped views still read it: retention deletes the
oldest ended traces first through it, and the Users list picks its page's users from it
(round 12), so a store without the dashboard would keep it for them. Before round 14 the
arm without the dashboard dropped it too, charging its ~2.6 µs a span of backfill at 1M
spans (a random insert each trace) to the dashboard (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from threadline.server.store.sqlite import SQLiteStore, metric_upkeep, model_usage, session_writes

DASHBOARD_INDEXES = ("sessions_by_errors_for_metrics",)
# The lists' indexes as the lists alone need them: migrations 0017 and 0029 widened
# them to cover the dashboard's reads.
LIST_INDEXES = {
    "sessions_by_activity": "project_id, end_ns, session_id",
    "sessions_by_duration": "project_id, (end_ns - start_ns), session_id",
    "sessions_by_cost": "project_id, COALESCE(cost_usd, -1.0), session_id",
}


def drop_schema(store: SQLiteStore) -> None:
    """Drop the dashboard's triggers and indexes from ``store`` and narrow the lists'
    indexes; nothing if they are gone already (every process of a server opens the
    store, and only the first one to do so finds them)."""
    with store._read() as conn:
        present = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
            (DASHBOARD_INDEXES[0],),
        ).fetchone()
    if present is None:
        return
    with store._transaction() as conn:
        for (trigger,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'metric_%'"
        ).fetchall():
            conn.execute(f"DROP TRIGGER {trigger}")
        for index in DASHBOARD_INDEXES:
            conn.execute(f"DROP INDEX {index}")
        for index, columns in LIST_INDEXES.items():
            conn.execute(f"DROP INDEX {index}")
            conn.execute(f"CREATE INDEX {index} ON sessions ({columns})")


class _NoChanges(metric_upkeep.Changes):
    """Changes to the aggregates that are never written."""

    def write(self, *_args: object) -> None:
        return None


def _no_changes(*_args: object) -> metric_upkeep.Changes:
    """No changes to the aggregates: the batch's traces and sessions add none."""
    return _NoChanges()


def _no_usage(*_args: object) -> model_usage.BatchUsage:
    """No usage by model: the traces' rows are written without it."""
    return model_usage.BatchUsage()


def _no_new_traces(*_args: object) -> metric_upkeep.NewTraces:
    """Nothing added by a batch's traces, no usage by model (when it is prepared)."""
    return metric_upkeep.NewTraces()


def _skip(*_args: object) -> None:
    return None


def skip_upkeep() -> Callable[[], None]:
    """From now on, writes keep no aggregates and no usage by model, and batches are
    prepared without them; returns what puts the upkeep back."""
    kept = (metric_upkeep.traces_written, metric_upkeep.batch_usage, metric_upkeep.new_traces)
    kept_sessions = session_writes.keep_aggregates
    metric_upkeep.traces_written = _no_changes  # type: ignore[assignment]
    metric_upkeep.batch_usage = _no_usage  # type: ignore[assignment]
    metric_upkeep.new_traces = _no_new_traces  # type: ignore[assignment]
    session_writes.keep_aggregates = _skip  # type: ignore[assignment]

    def restore() -> None:
        metric_upkeep.traces_written, metric_upkeep.batch_usage, metric_upkeep.new_traces = kept
        session_writes.keep_aggregates = kept_sessions

    return restore


@contextmanager
def upkeep_skipped() -> Iterator[None]:
    """Writes in the block keep no aggregates and no usage by model."""
    restore = skip_upkeep()
    try:
        yield
    finally:
        restore()
