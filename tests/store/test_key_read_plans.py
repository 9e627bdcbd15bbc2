"""Writes and page reads that know the keys of the rows they want read those rows by
key: never every row of the project along an index searched by ``project_id`` alone,
which SQLite's planner, without ``sqlite_stat1``, takes for a list of a dozen keys when
that index holds the columns read or gives the order asked (docs/benchmarks.md, round
16). The plans do not depend on the store's size: a small store shows them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.spans import T0, trace_member
from tests.store.query_plans import statement_plans
from tests.store.test_shares_contract import share
from threadline.server.evaluation.model import EvaluatorIn, RunRecord
from threadline.server.model import NoteIn, Score, ScoreQuery, ScoreRecord, SessionQuery, TraceQuery
from threadline.server.store.sqlite import user_sessions
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


def test_a_sessions_scores_are_read_by_session_and_by_its_traces(store: SQLiteStore) -> None:
    # A session's scores (its own, and its turns' however written): the scores by session,
    # and the session's traces by session, each trace's scores by trace.
    project = project_of(store)
    store.write_scores(project, [score("own", session_id="s41")])
    found: list[Score] = []
    steps, read = steps_of(
        store,
        lambda: found.extend(store.list_scores(project, ScoreQuery(session_id="s41")).items),
        "scores",
    )
    assert not by_project_alone(steps), read
    assert not scans(steps), read
    assert sorted(s.id for s in found) == ["own", "t41"]


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


def delete_plans(store: SQLiteStore, run: Callable[[], object], table: str) -> dict[str, list[str]]:
    """The plans of the ``DELETE FROM <table>`` statements ``run`` makes the writer run."""
    seen: list[str] = []
    store._writer.set_trace_callback(seen.append)
    try:
        run()
    finally:
        store._writer.set_trace_callback(None)
    deletes = [sql for sql in dict.fromkeys(seen) if sql.startswith(f"DELETE FROM {table} ")]
    assert deletes, seen
    return {
        sql: [row[3] for row in store._writer.execute("EXPLAIN QUERY PLAN " + sql)]
        for sql in deletes
    }


@pytest.mark.parametrize("deleted", ["traces", "sessions"])
@pytest.mark.parametrize("table", ["notes", "share_links"])
def test_a_delete_finds_its_notes_and_share_links_by_their_target(
    store: SQLiteStore, deleted: str, table: str
) -> None:
    # Deleting traces or sessions deletes the notes on them and the share links to
    # them, found by what they name: not every note or link of the project read.
    project = project_of(store)
    for t in range(1, TRACES + 1):
        on_trace = trace_id(t) if t % 2 else None
        store.add_note(project, NoteIn(session_id=f"s{t}", trace_id=on_trace, body="seen"))
        kind, target = ("trace", trace_id(t)) if t % 2 else ("session", f"s{t}")
        store.add_share(share(project, t, kind=kind, target_id=target))
    doomed = range(41, 81)
    if deleted == "traces":
        plans = delete_plans(
            store, lambda: store.delete_traces(project, [trace_id(t) for t in doomed]), table
        )
    else:
        plans = delete_plans(
            store, lambda: store.delete_sessions(project, [f"s{t}" for t in doomed]), table
        )
    steps = [step for plan in plans.values() for step in plan]
    assert not by_project_alone(steps), plans
    assert not scans(steps), plans
    assert all(step.startswith("SEARCH") for step in steps), plans
    targets = {trace_id(t) for t in doomed} | {f"s{t}" for t in doomed}
    assert not [s for s in store.list_shares(project, limit=1000) if s.target_id in targets]
    assert [n for t in doomed for n in store.list_notes(project, f"s{t}")] == []
    assert len(store.list_notes(project, "s81")) == 1
    assert len(store.list_shares(project, limit=1000)) == TRACES - len(doomed)


def give_traces_to(store: SQLiteStore, project: int, user: str, traces: range) -> None:
    """A second trace in each session of ``traces``, of ``user``."""
    store.write_spans(
        project,
        [
            trace_member(
                1000 + t, 0, T0 + t * SECOND + SECOND // 2, SECOND, session_id=f"s{t}", user_id=user
            )
            for t in traces
        ],
    )


@pytest.fixture
def common_from_100(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user is rare below 50 traces, common from 100 (the small store has both)."""
    monkeypatch.setattr(user_sessions, "_RARE", (0.0, 50, 50))
    monkeypatch.setattr(user_sessions, "_COMMON", (0.0, 100, 100))


def test_a_rare_users_sessions_are_read_by_their_key(
    store: SQLiteStore, common_from_100: None
) -> None:
    # A user of few traces: their sessions, found by the index by user, are read by key
    # and sorted, not found along the list's index walked for the whole project.
    project = project_of(store)
    give_traces_to(store, project, "rare", range(41, 61))
    listed: list[str] = []

    def page() -> None:
        listed.extend(
            s.session_id
            for s in store.list_sessions(project, SessionQuery(user_id="rare", limit=5)).items
        )

    steps, read = steps_of(store, page, "sessions")
    assert not by_project_alone(steps), read
    assert not scans(steps), read
    user_steps, read = steps_of(store, page, "traces")
    read_traces = [s for s in user_steps if " traces " in s]
    assert read_traces, read
    assert all("traces_by_user (project_id=? AND user_id=?)" in s for s in read_traces), read
    assert listed == ["s60", "s59", "s58", "s57", "s56"] * 2  # read twice


def test_a_common_users_list_is_walked_asking_each_session(
    store: SQLiteStore, common_from_100: None
) -> None:
    # A user of many traces: the list's index is walked and each session asked by the
    # index by session whether a trace of it is theirs; the user's traces are not all
    # read first (every trace of a user of half the project, 300 ms at 100,000
    # sessions), nor asked of by user for each session.
    project = project_of(store)
    listed: list[str] = []

    def page() -> None:
        listed.extend(
            s.session_id
            for s in store.list_sessions(project, SessionQuery(user_id="u", limit=5)).items
        )

    plans = statement_plans(store, page)
    (listing,) = [plan for sql, plan in plans.items() if "FROM sessions WHERE" in sql]
    assert "sessions_by_activity" in listing[0], listing
    assert [s for s in listing if "traces" in s] == [
        "SEARCH traces EXISTS USING INDEX traces_by_session (project_id=? AND session_id=?)"
    ], listing
    assert listed == ["s200", "s199", "s198", "s197", "s196"]


def test_a_common_user_gone_quiet_is_not_walked_by_time(
    store: SQLiteStore, common_from_100: None
) -> None:
    # A common user whose traces are all older than many sessions: a list by time would
    # pass all of those first, asking each, so the user's sessions are collected into a
    # list and the list's index walked against it; sorted otherwise, the list is walked.
    project = project_of(store)
    give_traces_to(store, project, "quiet", range(1, 121))

    def listing(sort: str) -> list[str]:
        plans = statement_plans(
            store,
            lambda: store.list_sessions(project, SessionQuery(user_id="quiet", sort=sort)),
        )
        (plan,) = [plan for sql, plan in plans.items() if "FROM sessions WHERE" in sql]
        return [s for s in plan if "traces" in s]

    for sort in ("last_activity", "start"):
        assert [s for s in listing(sort) if "traces_by_user" in s], listing(sort)
        assert not [s for s in listing(sort) if "EXISTS" in s], listing(sort)
    assert listing("cost") == [
        "SEARCH traces EXISTS USING INDEX traces_by_session (project_id=? AND session_id=?)"
    ]
    listed = store.list_sessions(project, SessionQuery(user_id="quiet", limit=3)).items
    assert [s.session_id for s in listed] == ["s120", "s119", "s118"]


def test_both_ways_list_a_users_sessions_alike(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whichever way the user's sessions are found, the list is the same: each sort,
    # window, page after page, with a search or a score sort, beside other filters.
    project = project_of(store)
    theirs = range(30, 130, 3)
    give_traces_to(store, project, "v", theirs)
    scored = {f"s{t}" for t in theirs[1::2]}
    for t in theirs[1::2]:
        store.write_scores(project, [score(f"q{t}", session_id=f"s{t}")])
    end = datetime.fromtimestamp((T0 + 90 * SECOND) / 1e9, UTC)
    queries: list[dict[str, object]] = [
        {},
        {"sort": "start"},
        {"sort": "duration"},
        {"sort": "cost"},
        {"start": end - timedelta(seconds=30), "end": end},
        {"q": "number77"},
        {"q": "number78"},
        {"q": "question"},
        {"q": "number78", "sort": "relevance"},
        {"score_sort": {"name": "quality"}},
        {"score_sort": {"name": "quality"}, "q": "question"},
        {"status": "ok", "sort": "start"},
    ]

    def listed(query: dict[str, object]) -> list[str]:
        found: list[str] = []
        cursor = None
        while True:
            page = store.list_sessions(
                project,
                SessionQuery.model_validate(
                    {**query, "user_id": "v", "limit": 7, "cursor": cursor}
                ),
            )
            found += [s.session_id for s in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return found

    never, always = (0.0, 10**9, 10**9), (0.0, 1, 1)
    forms = {}
    for form, rare, common in (
        ("rare", never, never),
        ("between", always, never),
        ("common", always, always),
    ):
        monkeypatch.setattr(user_sessions, "_RARE", rare)
        monkeypatch.setattr(user_sessions, "_COMMON", common)
        # Walked however the list is sorted (``_late`` would collect a user gone quiet).
        monkeypatch.setattr(user_sessions, "_late", lambda *_: False)
        forms[form] = [listed(query) for query in queries]
    assert forms["rare"] == forms["between"] == forms["common"]
    every, *_, windowed, rare_word, one, common_word, ranked, by_score, scored_found, ok = forms[
        "rare"
    ]
    assert every == [f"s{t}" for t in reversed(theirs)]
    assert 0 < len(windowed) < len(every)
    assert (rare_word, one, ranked) == ([], ["s78"], ["s78"])
    assert sorted(common_word) == sorted(every) == sorted(by_score) == sorted(scored_found)
    assert set(by_score[: len(scored)]) == scored == set(scored_found[: len(scored)])
    assert sorted(ok) == sorted(every)
