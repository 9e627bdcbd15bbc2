"""A write that rolls a stored session up again (a trace whose spans came in two
exports) reads the stored session by its key: never the whole project's sessions,
whatever index holds the columns it reads."""

from __future__ import annotations

from pathlib import Path

from tests.spans import T0, trace_member
from tests.store.query_plans import statement_plans
from threadline.server.store.sqlite.store import SQLiteStore

SECOND = 10**9


def test_a_session_rolled_up_again_is_read_by_its_key(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        # Sessions enough that reading them all would be a step of its own.
        store.write_spans(
            project,
            [
                trace_member(t, 0, T0 + t * SECOND, SECOND, session_id=f"s{t}", user_id="u")
                for t in range(1, 201)
            ],
        )
        # A child of each of 20 traces arrives in a later export: their traces are rolled
        # up again, and with them their sessions, whose stored rows the write reads to
        # take back what they added to the dashboard's aggregates. (With a few ids the
        # planner took the lists' index by activity, which holds every column read, and
        # read all of the project's sessions: 26 ms a write at 100k sessions.)
        late = [
            trace_member(t, 1, T0 + t * SECOND, SECOND // 2, session_id=f"s{t}", user_id="u")
            for t in range(7, 27)
        ]
        plans = statement_plans(store, lambda: store.write_spans(project, late))
        read = {sql: plan for sql, plan in plans.items() if " sessions " in sql}
        assert read, plans
        steps = [step for plan in read.values() for step in plan]
        assert not [s for s in steps if s.endswith("(project_id=?)")], read
        assert not [s for s in steps if s.startswith("SCAN") and "VIRTUAL TABLE" not in s], read
        assert all(store.get_session(project, f"s{t}").span_count == 2 for t in range(7, 27))
    finally:
        store.close()
