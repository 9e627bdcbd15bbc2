"""The deletion part of the storage contract, on every backend: deleting traces and
sessions leaves exactly the store that the remaining data alone would have made
(rollups, user totals, score summaries, filters, notes), and what was deleted can be
written again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.store import test_contract
from tests.store.test_contract import T0, record
from threadline.server.model import (
    METRIC_NAMES,
    MetricsQuery,
    NoteIn,
    ScoreFilter,
    ScoreQuery,
    ScoreRecord,
    SessionQuery,
    SpanRecord,
    TraceQuery,
    UserQuery,
    ns_to_datetime,
)
from threadline.server.store import Store

DAY = 86_400 * 10**9

# The contract suite's fixtures: every test here runs on every backend.
backend = test_contract.backend
store = test_contract.store


def tid(n: int) -> str:
    return f"{n:032x}"


def spans() -> list[SpanRecord]:
    """s1: traces 1-3; s2: traces 4-5; trace 6 in no session. Users u1 and u2 spread."""
    return [
        record(1, 11, start=0, length=50, session="s1", user="u1", input='"q1"', output='"a1"'),
        record(1, 12, 11, start=5, length=10, tokens=(10, 5), cost=0.01),
        record(2, 21, start=100, length=50, session="s1", user="u1", input='"q2"', output='"a2"'),
        record(2, 22, 21, start=105, length=10, tokens=(20, 7), cost=0.02, error=True),
        record(3, 31, start=200, length=50, session="s1", user="u2", input='"q3"', output='"a3"'),
        record(4, 41, start=300, length=50, session="s2", user="u1", tokens=(3, 3)),
        record(5, 51, start=400, length=50, session="s2", user="u2", output='"a5"'),
        record(6, 61, start=500, length=50, user="u2", tokens=(1, 1), cost=0.5),
    ]


def score(
    score_id: str, name: str, value: float, session: str | None, trace: int | None = None, span=None
) -> ScoreRecord:
    return ScoreRecord(
        id=score_id,
        name=name,
        data_type="numeric",
        value=value,
        label=None,
        session_id=session,
        trace_id=tid(trace) if trace else None,
        span_id=f"{span:016x}" if span else None,
        source="api",
        author=None,
        comment=None,
        created_ns=T0 + len(score_id),
    )


def scores() -> list[ScoreRecord]:
    return [
        score("on-s1", "quality", 4, "s1"),
        score("on-t2", "quality", 1, "s1", 2),
        score("on-t2-span", "quality", 3, "s1", 2, 22),
        score("on-t1", "quality", 5, "s1", 1),
        score("on-t4", "quality", 2, "s2", 4),
        score("on-s2", "helpful", 1, "s2"),
        score("on-t6", "quality", 0, None, 6),
    ]


def notes() -> list[NoteIn]:
    return [
        NoteIn(session_id="s1", body="whole s1"),
        NoteIn(session_id="s1", trace_id=tid(2), body="about t2"),
        NoteIn(session_id="s2", body="whole s2"),
    ]


def fill(store: Store, project: int, keep=lambda trace, session: True) -> None:
    """Write the data set, or (``keep``) the part of it a deletion should leave."""
    trace_sessions = {s.trace_id: s.session_id for s in spans() if s.session_id}
    wanted = [s for s in spans() if keep(s.trace_id, trace_sessions.get(s.trace_id))]
    store.write_spans(project, wanted)
    store.write_scores(
        project,
        [
            s
            for s in scores()
            if keep(s.trace_id, s.session_id or (s.trace_id and trace_sessions.get(s.trace_id)))
        ],
    )
    for note in notes():
        if keep(note.trace_id, note.session_id):
            store.add_note(project, note)


def snapshot(store: Store, project: int) -> dict[str, Any]:
    """Everything a reader can see of the project."""
    sessions = store.list_sessions(project, SessionQuery(limit=500)).items
    traces = store.list_traces(project, TraceQuery(limit=500)).items
    return {
        "sessions": [s.model_dump() for s in sessions],
        "session_details": [
            store.get_session(project, s.session_id).model_dump() for s in sessions
        ],
        "traces": [t.model_dump() for t in traces],
        "spans": [store.get_trace(project, t.trace_id).model_dump() for t in traces],
        "users": [u.model_dump() for u in store.list_users(project, UserQuery(limit=500)).items],
        "scores": [s.model_dump() for s in store.list_scores(project, ScoreQuery(limit=500)).items],
        "filtered": [
            s.session_id
            for s in store.list_sessions(
                project,
                SessionQuery(limit=500, scores=[ScoreFilter(name="quality", op=">=", value=1)]),
            ).items
        ],
        "notes": {
            s: [(n.body, n.trace_id) for n in store.list_notes(project, s)] for s in ("s1", "s2")
        },
        # The dashboard's figures, read from the same rollups.
        "metrics": store.metrics(
            project,
            MetricsQuery(start=ns_to_datetime(T0 - DAY), end=ns_to_datetime(T0 + DAY)),
            METRIC_NAMES,
        ).model_dump(),
    }


def reference(backend: str, tmp_path: Path, keep) -> dict[str, Any]:
    """The snapshot of a store that was only ever given what ``keep`` keeps."""
    folder = tmp_path / f"{tmp_path.name}_ref"
    folder.mkdir()
    other = test_contract._open(backend, folder)
    try:
        project = other.create_project("p").id
        fill(other, project, keep)
        return snapshot(other, project)
    finally:
        other.close()


def test_deleting_a_trace_leaves_what_its_absence_would(store: Store, backend, tmp_path):
    project = store.create_project("p").id
    fill(store, project)
    before = snapshot(store, project)
    assert store.delete_traces(project, [tid(2)]) == 1
    after = snapshot(store, project)
    assert after == reference(backend, tmp_path, lambda trace, session: trace != tid(2))
    # What changed: s1 lost a trace, a failed one, and its costs; t2's scores and note went.
    s1 = next(s for s in after["sessions"] if s["session_id"] == "s1")
    was = next(s for s in before["sessions"] if s["session_id"] == "s1")
    assert (was["trace_count"], s1["trace_count"]) == (3, 2)
    assert (was["error_count"], s1["error_count"]) == (1, 0)
    assert store.get_trace(project, tid(2)) is None
    assert not store.list_scores(project, ScoreQuery(trace_id=tid(2))).items
    assert after["notes"]["s1"] == [("whole s1", None)]
    # A trace id that is not there (any more) deletes nothing.
    assert store.delete_traces(project, [tid(2), tid(99)]) == 0
    assert snapshot(store, project) == after


def test_deleting_a_session_takes_its_traces_scores_and_notes(store: Store, backend, tmp_path):
    project = store.create_project("p").id
    fill(store, project)
    assert store.delete_sessions(project, ["s2", "no-such-session"]) == 1
    after = snapshot(store, project)
    assert after == reference(backend, tmp_path, lambda trace, session: session != "s2")
    assert store.get_session(project, "s2") is None
    assert {tid(4), tid(5)}.isdisjoint(t["trace_id"] for t in after["traces"])
    assert not store.list_scores(project, ScoreQuery(session_id="s2")).items
    assert after["notes"]["s2"] == []
    # u1's and u2's totals no longer count s2's traces.
    users = {u["user_id"]: u for u in after["users"]}
    assert (users["u1"]["trace_count"], users["u2"]["trace_count"]) == (2, 2)


def test_the_last_trace_of_a_session_takes_the_session(store: Store):
    project = store.create_project("p").id
    fill(store, project)
    assert store.delete_traces(project, [tid(4), tid(5)]) == 2
    assert store.get_session(project, "s2") is None
    assert "s2" not in [s.session_id for s in store.list_sessions(project, SessionQuery()).items]
    assert store.list_notes(project, "s2") == []
    assert not store.list_scores(project, ScoreQuery(session_id="s2")).items


def test_what_was_deleted_can_be_written_again(store: Store, backend, tmp_path):
    project = store.create_project("p").id
    fill(store, project)
    assert store.delete_sessions(project, ["s1"]) == 1
    assert store.delete_traces(project, [tid(6)]) == 1
    # The same spans again (an exporter's retry, or a re-import): as if never deleted,
    # their rollups computed afresh rather than hidden behind the deleted ones.
    store.write_spans(project, spans())
    store.write_scores(project, scores())
    again = snapshot(store, project)
    complete = reference(backend, tmp_path, lambda trace, session: True)
    assert again["sessions"] == complete["sessions"]
    assert again["traces"] == complete["traces"]
    assert again["users"] == complete["users"]
    assert again["scores"] == complete["scores"]


def test_deletion_is_per_project(store: Store):
    a = store.create_project("a").id
    b = store.create_project("b").id
    fill(store, a)
    fill(store, b)
    assert store.delete_sessions(b, ["s1", "s2"]) == 2
    assert store.delete_traces(b, [tid(6)]) == 1
    assert store.list_traces(b, TraceQuery()).items == []
    assert store.get_session(a, "s1").trace_count == 3
    assert len(store.list_traces(a, TraceQuery()).items) == 6
    assert len(store.list_scores(a, ScoreQuery()).items) == len(scores())
