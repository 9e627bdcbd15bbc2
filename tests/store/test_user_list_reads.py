"""The SQLite Users list reads what its page needs: its users are picked from the
traces' index by end alone (index-only, no trace row read), then only their traces are
read, found by user, for their totals and their scores' summaries; whatever the window,
no statement scans the traces or reads the window's range of trace rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.query_plans import statement_plans as _plans
from tests.store.test_metric_aggregates import HOUR, T0, history
from threadline.server.model import UserQuery, ns_to_datetime
from threadline.server.store.sqlite import user_list
from threadline.server.store.sqlite.store import SQLiteStore

WINDOWS = {
    "all time": {},
    "a start": {"start": ns_to_datetime(T0 + 2 * HOUR)},
    "both ends": {"start": ns_to_datetime(T0 - HOUR), "end": ns_to_datetime(T0 + 50 * HOUR)},
    "an end": {"end": ns_to_datetime(T0 + 50 * HOUR)},
}

ALLOWED = (
    "SEARCH traces USING COVERING INDEX traces_by_end (project_id=?",
    "SEARCH traces USING INDEX traces_by_user (project_id=? AND user_id=?",
    "SEARCH t USING INDEX traces_by_user (project_id=? AND user_id=?",
    # how many traces the page's users began before the window's end (index-only)
    "SEARCH traces USING COVERING INDEX traces_by_user (project_id=? AND user_id=?",
)


def test_users_with_long_histories_are_read_from_the_windows_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Past a few traces a user begun before the window's end, the page's users' traces
    are read from the window's range by end, with the same totals and scores."""
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        history(store, project, 3)
        by_user = {
            label: store.list_users(project, UserQuery(limit=3, **window))
            for label, window in WINDOWS.items()
        }
        monkeypatch.setattr(user_list, "_BY_USER_AT_MOST", 1)
        for label, window in WINDOWS.items():
            query = UserQuery(limit=3, **window)
            assert store.list_users(project, query) == by_user[label], label
            plans = _plans(store, lambda q=query: store.list_users(project, q))
            steps = [s for plan in plans.values() for s in plan if " traces " in s + " "]
            if "start" in window:
                assert not [
                    s
                    for s in steps
                    if "USING INDEX traces_by_user (project_id=? AND user_id=?" in s
                ], (label, plans)
                assert [
                    s
                    for s in steps
                    if s.startswith(
                        (
                            "SEARCH t USING INDEX traces_by_end",
                            "SEARCH traces USING INDEX traces_by_end",
                        )
                    )
                ], (label, plans)
    finally:
        store.close()


def test_the_users_list_reads_only_its_pages_users_traces(tmp_path: Path):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        history(store, project, 3)
        for label, window in WINDOWS.items():
            for query in (UserQuery(limit=2, **window), UserQuery(limit=2, q="u", **window)):
                first = store.list_users(project, query)
                assert first.items, label
                later = query.model_copy(update={"cursor": first.next_cursor})
                for run in (query, later):
                    plans = _plans(store, lambda q=run: store.list_users(project, q))
                    steps = [s for plan in plans.values() for s in plan if " traces " in s + " "]
                    assert steps, (label, plans)
                    for step in steps:
                        # The pick: index entries only. The rest: the page's users' traces.
                        assert step.startswith(ALLOWED), (label, step, plans)
    finally:
        store.close()
