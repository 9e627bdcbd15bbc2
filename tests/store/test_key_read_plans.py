"""Writes and page reads that know the keys of the rows they want read those rows by
key: never every row of the project along an index searched by ``project_id`` alone,
which SQLite's planner, without ``sqlite_stat1``, takes for a list of a dozen keys when
that index holds the columns read or gives the order asked (docs/benchmarks.md, round
16). The plans do not depend on the store's size: a small store shows them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.spans import T0, trace_member
from tests.store.query_plans import statement_plans
from threadline.server.evaluation.model import EvaluatorIn, RunRecord
from threadline.server.model import Score, ScoreQuery, ScoreRecord, SessionQuery, TraceQuery
from threadline.server.store.sqlite.store import SQLiteStore

SECOND = 10**9
TRACES = 200


def trace_id(t: int) -> str:
    return f"{t:032x}"


def score(score_id: str, *, session_id: str | None = None, trace: int | None = None) -> ScoreRecord:
    return ScoreRecord(
        id=score_id,
        name="quality",
        data_type="numeric",
        value=4.0,
        label=None,
        session_id=session_id,
        trace_id=None if trace is None else trace_id(trace),
        span_id=None,
        source="api",
        author=None,
        comment=None,
        created_ns=T0,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """Two projects of 200 traces, one session each, every other trace scored (its
    rollup placed in its trace's hour), the first project's the one the tests use."""
    store = SQLiteStore(tmp_path / "t.db")
    try:
        for name in ("other", "p"):
            project = store.create_project(name).id
            store.write_spans(
                project,
                [
                    trace_member(
                        t,
                        0,
                        T0 + t * SECOND,
                        SECOND,
                        session_id=f"s{t}",
                        user_id="u",
                        input=f"question number{t}",
                    )
                    for t in range(1, TRACES + 1)
                ],
            )
            store.write_scores(project, [score(f"t{t}", trace=t) for t in range(1, TRACES + 1, 2)])
        yield store
    finally:
        store.close()


def project_of(store: SQLiteStore) -> int:
    return next(p.id for p in store.list_projects() if p.name == "p")


def steps_of(
    store: SQLiteStore, run: Callable[[], object], table: str
) -> tuple[list[str], dict[str, list[str]]]:
    """The plan steps of the statements ``run`` reads ``table`` with (and those plans)."""
    plans = statement_plans(store, run)
    read = {sql: plan for sql, plan in plans.items() if f" {table} " in f"{sql} "}
    assert read, plans
    return [step for plan in read.values() for step in plan], read


def by_project_alone(steps: list[str]) -> list[str]:
    return [s for s in steps if s.endswith("(project_id=?)")]


def scans(steps: list[str]) -> list[str]:
    """Scans of a table (a list of ids given as JSON, or a subquery's rows, are no table)."""
    return [
        s
        for s in steps
        if s.startswith("SCAN") and "VIRTUAL TABLE" not in s and not s.startswith("SCAN hit")
    ]


def test_a_write_of_new_traces_asks_only_the_rollups_waiting_for_their_target(
    store: SQLiteStore,
) -> None:
    # Each write bringing a trace or session new to the store asks whether a score
    # rollup of the project waits for its target (a score sent before its spans): the
    # partial index of those answers, not the project's every rollup.
    project = project_of(store)
    new = [
        trace_member(t, 0, T0 + t * SECOND, SECOND, session_id=f"s{t}")
        for t in range(TRACES + 1, TRACES + 21)
    ]
    steps, read = steps_of(store, lambda: store.write_spans(project, new), "score_rollups")
    probe = [plan for sql, plan in read.items() if "target_hour IS NULL" in sql]
    assert probe and all("score_rollups_waiting" in plan[0] for plan in probe), read
    assert [s for s in by_project_alone(steps) if "score_rollups_waiting" not in s] == [], read
    assert not scans(steps), read
    assert store.get_trace(project, trace_id(TRACES + 1)) is not None


def test_a_score_write_finds_its_sessions_hours_by_their_key(store: SQLiteStore) -> None:
    # New rollups count in their target's hour: the write reads each scored session's
    # start and end by its key.
    project = project_of(store)
    records = [score(f"s{t}", session_id=f"s{t}") for t in range(40, 80, 2)]
    steps, read = steps_of(store, lambda: store.write_scores(project, records), "sessions")
    assert not by_project_alone(steps), read
    assert not scans(steps), read
    assert len(store.list_scores(project, ScoreQuery(session_id="s40")).items) == 1


def test_a_score_write_finds_its_traces_hours_by_their_key(store: SQLiteStore) -> None:
    project = project_of(store)
    records = [score(f"n{t}", trace=t) for t in range(40, 80, 2)]
    steps, read = steps_of(store, lambda: store.write_scores(project, records), "traces")
    assert not by_project_alone(steps), read
    assert not scans(steps), read


def test_the_scores_of_a_sessions_turns_are_read_by_trace(store: SQLiteStore) -> None:
    # The session page reads the scores of its turns' traces: each trace's by the
    # index by trace, then sorted, not every score of the project newest first.
    project = project_of(store)
    wanted = [trace_id(t) for t in range(41, 81, 2)]
    found: list[Score] = []
    steps, read = steps_of(
        store,
        lambda: found.extend(
            store.list_scores(project, ScoreQuery(trace_ids=wanted, limit=100)).items
        ),
        "scores",
    )
    assert not by_project_alone(steps), read
    assert not scans(steps), read
    assert sorted(str(s.trace_id) for s in found) == sorted(wanted)


@pytest.mark.parametrize("listed", ["traces", "sessions"])
def test_a_rare_search_finds_its_traces_by_their_key(store: SQLiteStore, listed: str) -> None:
    # A rare query's matches name their traces' keys: each is looked up by key, not
    # found among every trace key of the project.
    project = project_of(store)

    def search() -> list[str]:
        if listed == "traces":
            return [t.trace_id for t in store.list_traces(project, TraceQuery(q="number77")).items]
        return [
            s.session_id for s in store.list_sessions(project, SessionQuery(q="number77")).items
        ]

    steps, read = steps_of(store, search, "trace_keys")
    assert not by_project_alone(steps), read
    assert not scans(steps), read
    assert search() == [trace_id(77) if listed == "traces" else "s77"]


def test_runs_asked_for_are_claimed_by_their_key(store: SQLiteStore) -> None:
    # An on-demand run claims the runs it queued, by id: each looked up by its key,
    # not the project's every run walked in the order of their creation.
    project = project_of(store)
    store.put_evaluator(
        project,
        EvaluatorIn.model_validate(
            {
                "name": "resolved",
                "prompt": "Was it resolved?",
                "judge": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
                "score": {"name": "resolved", "data_type": "boolean"},
                "online": False,
            }
        ),
    )
    runs = [
        RunRecord(
            id=f"r{t}",
            evaluator="resolved",
            target_kind="session",
            target_id=f"s{t}",
            session_id=f"s{t}",
            trigger="manual",
            created_ns=T0 + t,
        )
        for t in range(1, TRACES + 1)
    ]
    store.add_runs(project, runs)
    asked = [f"r{t}" for t in range(60, 90)]
    claimed: list[RunRecord] = []
    steps, read = steps_of(
        store,
        lambda: claimed.extend(store.claim_runs(20, 60 * SECOND, only=(project, asked))),
        "evaluation_runs",
    )
    assert not by_project_alone(steps), read
    assert not scans(steps), read
    assert [r.id for r in claimed] == asked[:20]
