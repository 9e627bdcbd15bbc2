"""What else names a deleted trace or session goes with it, on every backend: the
evaluation runs that judged it (their reasons quote it) and its share links (a link
must not come back to life if the id is written again). A session that keeps some of
its traces keeps its own runs and links, as it keeps its own scores; an evaluator's
totals keep what its judge did and cost. Retention deletes through the same
``delete_traces``. The rows of inferred sessions that are gone go too (on SQLite also
the conversation keys and placement of each deleted trace)."""

from __future__ import annotations

import random

import pytest

from tests.chat_turns import BASE, conversation
from tests.chat_turns import turn_spans as chat_turn_spans
from tests.store import test_contract
from tests.store.test_deletion_contract import fill, tid
from tests.store.test_evaluation_contract import definition
from tests.store.test_inference_contract import WINDOW
from tests.store.test_inference_contract import send as send_turn
from tests.store.test_shares_contract import share
from threadline.server.evaluation.model import RunOutcome, RunQuery, RunRecord
from threadline.server.model import SessionQuery, SessionSignals, SpanRecord
from threadline.server.store import Store
from threadline.server.store.sqlite.driver import sqlite3

backend = test_contract.backend
store = test_contract.store


def _run(run_id: str, kind: str, target: str, session: str) -> RunRecord:
    return RunRecord(
        id=run_id,
        evaluator="resolved",
        target_kind=kind,
        target_id=target,
        session_id=session,
        trigger="manual",
        created_ns=test_contract.T0 + len(run_id),
    )


RUNS = [
    _run("run-s1", "session", "s1", "s1"),
    _run("run-t1", "trace", tid(1), "s1"),
    _run("run-t2", "trace", tid(2), "s1"),
    _run("run-s2", "session", "s2", "s2"),
    _run("run-t4", "trace", tid(4), "s2"),
]
SHARES = {  # link number: (kind, target)
    1: ("session", "s1"),
    2: ("trace", tid(2)),
    3: ("session", "s2"),
    4: ("trace", tid(4)),
    5: ("trace", tid(6)),
}


def _fill(store: Store, project: int) -> None:
    fill(store, project)
    store.put_evaluator(project, definition())
    assert store.add_runs(project, RUNS) == len(RUNS)
    done = RunOutcome("done", score_id="sc", input_tokens=10, output_tokens=2, cost_usd=0.01)
    for run in RUNS:
        assert store.finish_run(project, run.id, done)
    for n, (kind, target) in SHARES.items():
        store.add_share(share(project, n, id=f"link-{n}", kind=kind, target_id=target))


def _runs(store: Store, project: int) -> list[str]:
    return sorted(r.id for r in store.list_runs(project, RunQuery(limit=100)).items)


def _shared(store: Store, project: int) -> list[str]:
    return sorted(s.target_id for s in store.list_shares(project))


@pytest.fixture
def projects(store: Store) -> tuple[int, int]:
    a, b = store.create_project("a").id, store.create_project("b").id
    _fill(store, a)
    # B holds the same ids, with other token digests: A's deletes leave them all.
    fill(store, b)
    store.put_evaluator(b, definition())
    store.add_runs(b, RUNS)
    for n, (kind, target) in SHARES.items():
        store.add_share(
            share(
                b,
                n,
                id=f"b-link-{n}",
                token_hash=bytes([100 + n]) * 32,
                kind=kind,
                target_id=target,
            )
        )
    return a, b


def _b_untouched(store: Store, b: int) -> None:
    assert _runs(store, b) == sorted(r.id for r in RUNS)
    assert _shared(store, b) == sorted(t for _, t in SHARES.values())


def test_a_deleted_trace_takes_its_runs_and_links(store: Store, projects) -> None:
    a, b = projects
    totals = store.get_evaluator(a, "resolved").totals
    assert store.delete_traces(a, [tid(2)]) == 1
    # s1 keeps its other traces, so its session run and link stay.
    assert _runs(store, a) == ["run-s1", "run-s2", "run-t1", "run-t4"]
    assert _shared(store, a) == sorted(["s1", "s2", tid(4), tid(6)])
    assert store.delete_traces(a, [tid(6)]) == 1  # a trace in no session
    assert _shared(store, a) == sorted(["s1", "s2", tid(4)])
    # What the judge did and cost is not undone.
    assert store.get_evaluator(a, "resolved").totals == totals
    assert totals.runs_done == len(RUNS)
    _b_untouched(store, b)


def test_a_deleted_session_takes_its_runs_and_links(store: Store, projects) -> None:
    a, b = projects
    assert store.delete_sessions(a, ["s2"]) == 1
    assert _runs(store, a) == ["run-s1", "run-t1", "run-t2"]
    assert _shared(store, a) == sorted(["s1", tid(2), tid(6)])
    assert store.list_runs(a, RunQuery(session_id="s2")).items == []
    _b_untouched(store, b)


def test_a_session_emptied_trace_by_trace_takes_its_runs_and_links(store: Store, projects):
    a, b = projects
    # As retention expires a session's traces, a batch at a time.
    assert store.delete_traces(a, [tid(1)]) == 1
    assert store.delete_traces(a, [tid(2), tid(3)]) == 2
    assert _runs(store, a) == ["run-s2", "run-t4"]
    assert _shared(store, a) == sorted(["s2", tid(4), tid(6)])
    _b_untouched(store, b)


def _inferred_turn(trace: int, offers: bytes, asks: bytes | None) -> SpanRecord:
    span = test_contract.record(trace, trace * 10, start=trace * 100, length=50, input='"q"')
    span.session_signals = SessionSignals(
        offers=(offers,), asks=((asks, "history"),) if asks is not None else ()
    )
    return span


def _inference_rows(path, project: int) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE project_id = ?", (project,)
            ).fetchone()[0]
            for table in ("conversation_keys", "inferred_traces", "inferred_sessions")
        }
    finally:
        conn.close()


def test_sqlite_forgets_the_inference_of_deleted_traces(backend, store: Store, tmp_path):
    if backend != "sqlite":
        pytest.skip("sessions are inferred on SQLite only")
    a, b = store.create_project("a").id, store.create_project("b").id
    key = [bytes([n]) * 16 for n in range(4)]
    for project in (a, b):
        # Three turns of one conversation (each asks for what the one before offered),
        # and a turn still waiting for an earlier one (its ask stays open).
        store.write_spans(project, [_inferred_turn(1, key[1], None)])
        store.write_spans(project, [_inferred_turn(2, key[2], key[1])])
        store.write_spans(project, [_inferred_turn(3, key[3], key[2])])
        store.write_spans(project, [_inferred_turn(4, bytes([9]) * 16, bytes([8]) * 16)])
    path = tmp_path / "contract.db"
    before = _inference_rows(path, a)
    assert before["inferred_sessions"] == 1 and before["inferred_traces"] == 3
    session = store.get_trace(a, tid(1)).session_id
    assert session is not None and store.get_session(a, session).trace_count == 3
    assert store.delete_traces(a, [tid(3), tid(4)]) == 2
    assert _inference_rows(path, a) == {
        "conversation_keys": before["conversation_keys"] - 3,  # t3's offer, t4's offer + ask
        "inferred_traces": 2,
        "inferred_sessions": 1,
    }
    assert store.delete_sessions(a, [session]) == 1
    assert _inference_rows(path, a) == {
        "conversation_keys": 0,
        "inferred_traces": 0,
        "inferred_sessions": 0,
    }
    assert _inference_rows(path, b) == before


def _inference_leftovers(backend: str, store: Store, tmp_path, project: int) -> dict[str, int]:
    if backend == "sqlite":
        return _inference_rows(tmp_path / "contract.db", project)
    return {
        table: store._rows(  # type: ignore[attr-defined]
            # Distinct rows: a row written twice merges away, sooner or later.
            f"SELECT count() FROM (SELECT DISTINCT * FROM {table} WHERE project_id = %(p)s)",
            {"p": project},
        )[0][0]
        for table in ("response_sessions",)
    }


def test_a_deleted_inferred_session_leaves_no_inference(backend, store: Store, tmp_path):
    # Two conversations sent without session ids, one found by its history, one by its
    # Responses chain; both projects hold the same.
    a, b = store.create_project("a").id, store.create_project("b").id
    history = conversation("h", BASE, rng=random.Random(1))
    chain = conversation("r", BASE, turns=2, rng=random.Random(2))
    for project in (a, b):
        for turn in history:
            send_turn(store, project, chat_turn_spans(history, turn))
        for turn in chain:
            extra = {"gen_ai.response.id": f"resp_{turn.index}"}
            if turn.index:
                extra["gen_ai.request.previous_response_id"] = f"resp_{turn.index - 1}"
            send_turn(store, project, chat_turn_spans(chain, turn, history=[], **extra))
    inferred = [
        s.session_id
        for s in store.list_sessions(a, SessionQuery(limit=50, **WINDOW)).items
        if s.inferred
    ]
    assert len(inferred) == 2
    before = _inference_leftovers(backend, store, tmp_path, a)
    assert all(before.values()), before
    assert store.delete_sessions(a, inferred) == 2
    assert set(_inference_leftovers(backend, store, tmp_path, a).values()) == {0}
    assert _inference_leftovers(backend, store, tmp_path, b) == before


def _rows_naming(backend: str, store: Store, tmp_path, project: int, trace_id: str):
    """The tables holding a row of ``project`` whose ``trace_id`` column names the trace."""
    found = {}
    if backend == "sqlite":
        db = sqlite3.connect(tmp_path / "contract.db")
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                columns = {r[1] for r in db.execute(f"PRAGMA table_info('{table}')")}
                if {"trace_id", "project_id"} <= columns:
                    (n,) = db.execute(
                        f"SELECT count(*) FROM {table} WHERE project_id = ? AND trace_id = ?",
                        (project, trace_id),
                    ).fetchone()
                    found[table] = n
        finally:
            db.close()
    else:
        rows = store._rows  # type: ignore[attr-defined]
        tables = rows(
            "SELECT table FROM system.columns WHERE database = currentDatabase()"
            " AND name = 'trace_id' AND table IN (SELECT name FROM system.tables"
            " WHERE database = currentDatabase() AND engine LIKE '%MergeTree')"
            " AND table IN (SELECT table FROM system.columns WHERE database = currentDatabase()"
            " AND name = 'project_id')",
            {},
        )
        for (table,) in tables:
            found[table] = rows(
                f"SELECT count() FROM {table} WHERE project_id = %(p)s AND trace_id = %(t)s",
                {"p": project, "t": trace_id},
            )[0][0]
    return {table: n for table, n in found.items() if n}


def test_a_deleted_trace_leaves_no_row_naming_it(backend, store: Store, tmp_path):
    # A chat turn fills every per-trace table a trace can have: spans, rollups, usage by
    # model, context use, search, inference; a second project holds the same trace.
    a, b = store.create_project("a").id, store.create_project("b").id
    turns = conversation("c", BASE, turns=1, rng=random.Random(4))
    for project in (a, b):
        send_turn(store, project, chat_turn_spans(turns, turns[0]))
    trace_id = turns[0].trace_id
    before = _rows_naming(backend, store, tmp_path, a, trace_id)
    assert len(before) >= 4, before
    assert store.delete_traces(a, [trace_id]) == 1
    assert _rows_naming(backend, store, tmp_path, a, trace_id) == {}
    assert _rows_naming(backend, store, tmp_path, b, trace_id) == before
