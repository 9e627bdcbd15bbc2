"""The SQLite Sessions list in a window with both ends, sorted otherwise than by start:
the window's end never picks the range by start, which held every session begun before
it (all of them, for a window up to now) to be sorted for one page."""

from __future__ import annotations

from pathlib import Path

from tests.store.query_plans import statement_plans as _plans
from tests.store.test_metric_aggregates import HOUR, T0, history
from threadline.server.model import SessionQuery, ns_to_datetime
from threadline.server.store.sqlite.store import SQLiteStore

WINDOW = {"start": ns_to_datetime(T0 - HOUR), "end": ns_to_datetime(T0 + 50 * HOUR)}


def test_a_window_s_end_picks_the_range_by_start_only_for_the_list_by_start(tmp_path: Path):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        history(store, project, 3)
        for sort in ("last_activity", "start", "duration", "cost", "tokens", "context"):
            query = SessionQuery(sort=sort, **WINDOW)  # type: ignore[arg-type]
            assert store.list_sessions(project, query).items, sort
            plans = _plans(store, lambda q=query: store.list_sessions(project, q))
            on_sessions = [
                s for plan in plans.values() for s in plan if s.startswith("SEARCH sessions")
            ]
            by_start = [s for s in on_sessions if "sessions_by_start" in s]
            if sort == "start":
                assert by_start, plans
            else:
                assert on_sessions and not by_start, (sort, plans)
    finally:
        store.close()
