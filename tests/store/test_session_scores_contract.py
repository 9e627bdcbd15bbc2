"""A session's scores on every backend: listed by ``session_id`` are the scores written
on the session and those on its turns, however a turn's score was written (with its
trace id alone, or with the session id too) and whichever came first, the score or the
trace; the session's and trace's rollups count both ways of writing a turn's score the
same (in the trace, not the session). And the Users list filtered by score, from the
users' merged summaries."""

from __future__ import annotations

from tests.store import test_contract
from tests.store.test_contract import MS, T0, record, score, summary
from threadline.server.model import (
    MetricsQuery,
    ScoreFilter,
    ScoreQuery,
    SessionQuery,
    TraceQuery,
    UserQuery,
    ns_to_datetime,
)
from threadline.server.store import Store

backend = test_contract.backend
store = test_contract.store


def _listed(store: Store, project: int, **query) -> list[str]:
    """Every score id ``query`` lists, page after page (two a page), newest first."""
    ids: list[str] = []
    cursor = None
    while True:
        page = store.list_scores(project, ScoreQuery(limit=2, cursor=cursor, **query))
        ids += [s.id for s in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return ids


def test_a_sessions_scores_include_its_turns_however_written(store: Store):
    project = store.create_project("p").id
    # Before the traces exist: a turn's score by trace id alone, and one with the session.
    store.write_scores(
        project,
        [
            score("early-trace-only", "turn", 1, trace=1, at=1),
            score("early-with-session", "turn", 0, trace=1, session="s", at=2),
        ],
    )
    store.write_spans(
        project,
        [
            record(1, 1, start=0, session="s", user="u"),
            record(2, 2, start=10, session="s", user="u"),
            record(3, 3, start=20, session="other", user="u"),
            record(4, 4, start=30, user="u"),
        ],
    )
    # After the traces: the same two ways, a span's score, the session's own, and
    # scores of another session's turn and of a trace in no session.
    store.write_scores(
        project,
        [
            score("late-trace-only", "turn", 1, trace=2, at=3),
            score("late-with-session", "turn", 0, trace=2, session="s", at=4),
            score("span", "turn", 1, trace=2, span=2, at=5),
            score("own", "resolved", True, session="s", at=6),
            score("other-turn", "turn", 1, trace=3, at=7),
            score("no-session", "turn", 1, trace=4, at=8),
        ],
    )
    session_scores = [
        "own",
        "span",
        "late-with-session",
        "late-trace-only",
        "early-with-session",
        "early-trace-only",
    ]
    assert _listed(store, project, session_id="s") == session_scores
    assert _listed(store, project, session_id="s", name="turn") == session_scores[1:]
    assert _listed(store, project, session_id="s", trace_id=f"{1:032x}") == session_scores[4:]
    # The session's own (what its summary counts, and its page's panel shows).
    assert _listed(store, project, session_id="s", session_own=True) == ["own"]
    assert _listed(store, project, session_id="other") == ["other-turn"]
    assert _listed(store, project, session_id="nothing") == []

    # Rollups: a turn's score counts in its trace, written either way; the session's
    # summary is its own scores'.
    detail = store.get_session(project, "s")
    assert detail is not None
    assert detail.scores == {"resolved": summary(1, 1.0)}
    assert {t.trace_id: t.scores for t in detail.traces} == {
        f"{1:032x}": {"turn": summary(2, 0.5)},
        f"{2:032x}": {"turn": summary(3, 2 / 3)},
    }
    (listed,) = store.list_sessions(
        project, SessionQuery(scores=[ScoreFilter(name="resolved", op="=", value=1.0)])
    ).items
    assert listed.session_id == "s" and listed.scores == {"resolved": summary(1, 1.0)}
    # No session has a "turn" summary, whichever way its turns' scores were written.
    no_turn = SessionQuery(scores=[ScoreFilter(name="turn", missing=True)])
    assert sorted(s.session_id for s in store.list_sessions(project, no_turn).items) == [
        "other",
        "s",
    ]
    on_turns = TraceQuery(scores=[ScoreFilter(name="turn", op=">=", value=0.5)])
    assert sorted(t.trace_id for t in store.list_traces(project, on_turns).items) == [
        f"{n:032x}" for n in (1, 2, 3, 4)
    ]
    # The dashboard averages every turn's score once, in its trace's hour (all here
    # in the hour of T0): 1, 0 on trace 1; 1, 0, 1 on trace 2; 1 and 1 on traces 3, 4.
    store.refresh_metrics()
    hour = T0 // (3600_000 * MS) * (3600_000 * MS)
    metrics = store.metrics(
        project,
        MetricsQuery(
            start=ns_to_datetime(hour), end=ns_to_datetime(hour + 3600_000 * MS), bucket="hour"
        ),
        ["traces"],
    )
    (turn,) = [s.values for s in metrics.series if s.metric == "score:turn"]
    assert turn == [5 / 7]


def test_users_filtered_by_score(store: Store):
    project = store.create_project("p").id
    store.write_spans(
        project,
        [
            record(1, 1, start=0, session="s", user="u"),
            record(2, 2, start=10, session="s", user="u"),
            record(3, 3, start=20, user="u"),
            record(4, 4, start=30, session="s2", user="v"),
            record(5, 5, start=40, user="w"),
        ],
    )
    store.write_scores(
        project,
        [
            score("1", "quality", 1, trace=1),
            score("2", "quality", 0.5, trace=3, span=3),
            score("3", "quality", 0, session="s"),
            score("4", "quality", 1, session="s2"),
            score("5", "topic", "a", trace=2, at=1),
            score("6", "topic", "b", session="s", at=3),
            score("7", "topic", "c", trace=4, at=2),
        ],
    )

    def users(*filters: ScoreFilter, limit: int = 50) -> list[str]:
        found: list[str] = []
        cursor = None
        while True:
            query = UserQuery(limit=limit, cursor=cursor, scores=list(filters))
            page = store.list_users(project, query)
            assert len(page.items) <= limit
            found += [u.user_id for u in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return found

    # u: quality 0.5 over three scores, topic "b"; v: quality 1, topic "c"; w: none.
    assert users(ScoreFilter(name="quality", op=">", value=0.6)) == ["v"]
    assert users(ScoreFilter(name="quality", op="<=", value=0.5)) == ["u"]
    assert users(ScoreFilter(name="quality", op=">=", value=0)) == ["v", "u"]
    assert users(ScoreFilter(name="quality", op=">=", value=0), limit=1) == ["v", "u"]
    assert users(ScoreFilter(name="topic", op="=", value="b")) == ["u"]
    assert users(ScoreFilter(name="topic", op="!=", value="b")) == ["v"]
    assert users(ScoreFilter(name="quality", missing=True)) == ["w"]
    assert users(
        ScoreFilter(name="quality", op=">", value=0), ScoreFilter(name="topic", op="=", value="c")
    ) == ["v"]
    assert users(ScoreFilter(name="nothing", op=">", value=0)) == []
    (v,) = store.list_users(
        project, UserQuery(scores=[ScoreFilter(name="quality", op="=", value=1)])
    ).items
    assert v.user_id == "v" and v.scores["quality"] == summary(1, 1.0)


def test_users_filtered_by_score_read_on_past_unscored_users(store: Store):
    """Matches spread thin over many users come in order, every one, a page never
    longer than asked (some pages shorter, with a cursor on)."""
    project = store.create_project("p").id
    store.write_spans(
        project,
        [record(n, n, start=n * 10, user=f"user-{n:03d}") for n in range(1, 301)],
    )
    scored = range(7, 301, 23)
    store.write_scores(project, [score(f"s{n}", "quality", n / 300, trace=n) for n in scored])
    found: list[str] = []
    cursor = None
    query = UserQuery(limit=3, scores=[ScoreFilter(name="quality", op=">", value=0.1)])
    while True:
        page = store.list_users(project, query.model_copy(update={"cursor": cursor}))
        assert len(page.items) <= 3
        found += [u.user_id for u in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert found == [f"user-{n:03d}" for n in reversed(scored) if n / 300 > 0.1]
