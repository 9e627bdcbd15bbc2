"""The storage contract: every backend runs this suite unchanged.

Add a backend by adding a parameter to the ``store`` fixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.spans import T0, span_record
from tests.store.chdb_http import database_name, shared_server
from threadline.server.errors import BadRequest, Conflict
from threadline.server.model import (
    NoteIn,
    ScoreConfig,
    ScoreFilter,
    ScoreQuery,
    ScoreRecord,
    ScoreSummary,
    SessionQuery,
    SpanRecord,
    TraceQuery,
    UserQuery,
    ns_to_datetime,
)
from threadline.server.score_types import name_types
from threadline.server.store import Store, open_store
from threadline.server.store.clickhouse import ClickHouseStore
from threadline.server.store.sqlite.driver import sqlite3

MS = 1_000_000


def _open(backend: str, tmp_path: Path) -> Store:
    if backend == "sqlite":
        return open_store(f"sqlite://{tmp_path / 'contract.db'}")
    # A database of its own for each test, on the chDB endpoint or on a real server.
    database = database_name(tmp_path.name)
    if backend == "clickhouse":
        return open_store(shared_server().url(database))
    if backend == "clickhouse-server":
        return open_store(os.environ["CLICKHOUSE_URL"].rstrip("/") + f"/{database}")
    raise AssertionError(backend)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("clickhouse", marks=pytest.mark.clickhouse),
        pytest.param(
            "clickhouse-server",
            marks=[
                pytest.mark.clickhouse,
                pytest.mark.skipif(
                    not os.environ.get("CLICKHOUSE_URL"),
                    reason="CLICKHOUSE_URL names no ClickHouse server (e.g. clickhouse://default:@host:8123)",
                ),
            ],
        ),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[Store]:
    opened = _open(backend, tmp_path)
    yield opened
    opened.close()


def record(
    trace: int,
    span: int,
    parent: int | None = None,
    *,
    start: int = 0,
    length: int = 10,
    session: str | None = None,
    user: str | None = None,
    error: bool = False,
    tokens: tuple[int, int] | None = None,
    cost: float | None = None,
    input: str | None = None,
    output: str | None = None,
    **extra,
) -> SpanRecord:
    return span_record(
        trace,
        span,
        T0 + start * MS,
        length * MS,
        parent_span_id=f"{parent:016x}" if parent else None,
        name=f"span-{span}",
        status="error" if error else "ok",
        input_tokens=tokens[0] if tokens else None,
        output_tokens=tokens[1] if tokens else None,
        total_tokens=sum(tokens) if tokens else None,
        cost_usd=cost,
        input=input,
        output=output,
        session_id=session,
        user_id=user,
        **extra,
    )


def test_writes_are_idempotent(store: Store):
    project = store.create_project("p").id
    spans = [record(1, 1, session="s"), record(1, 2, 1, start=2)]
    # ClickHouse does not read before it writes, so it cannot tell which spans are new:
    # it reports the spans it took.
    reads_on_write = not isinstance(store, ClickHouseStore)
    assert store.write_spans(project, spans) == 2
    assert store.write_spans(project, spans) == (0 if reads_on_write else 2)
    again = [record(1, 2, 1, start=2), record(1, 3, 1)]
    assert store.write_spans(project, again) == (1 if reads_on_write else 2)
    trace = store.get_trace(project, f"{1:032x}")
    assert trace.span_count == 3 and len(trace.spans) == 3
    session = store.get_session(project, "s")
    assert session.span_count == 3 and session.trace_count == 1


def test_trace_and_session_rollups(store: Store):
    project = store.create_project("p").id
    store.write_spans(
        project,
        [
            record(
                1, 1, start=0, length=100, session="s", user="u", input='{"q": 1}', output='"a1"'
            ),
            record(1, 2, 1, start=10, length=20, tokens=(100, 10), cost=0.5, error=True),
            record(2, 3, start=1000, length=50, input='"second"', output='"a2"'),
            record(2, 4, 3, start=1010, length=10, tokens=(5, 5), session="s", user="v"),
        ],
    )
    first = store.get_trace(project, f"{1:032x}")
    assert (first.span_count, first.error_count, first.status) == (2, 1, "error")
    assert (first.input_tokens, first.output_tokens, first.total_tokens) == (100, 10, 110)
    assert first.cost_usd == 0.5 and first.duration_ms == 100
    assert first.input_preview == '{"q": 1}' and first.output_preview == '"a1"'
    session = store.get_session(project, "s")
    assert session.trace_count == 2 and session.span_count == 4
    assert session.duration_ms == 1050  # wall-clock from first start to last end
    assert session.total_tokens == 120 and session.cost_usd == 0.5
    assert session.error_count == 1 and session.user_ids == ["u", "v"]
    assert session.first_input == '{"q": 1}' and session.last_output == '"a2"'
    assert [t.trace_id for t in session.traces] == [f"{1:032x}", f"{2:032x}"]


def test_metadata_filters_compare_values_as_pages_show_them(store: Store):
    project = store.create_project("p").id
    shown = {"vip": True, "beta": False, "n": 3, "ratio": 0.5, "plan": "pro", "x": {"a": 1}}
    store.write_spans(
        project,
        [
            record(1, 1, session="s1", metadata=shown),
            record(2, 2, start=100, session="s2", metadata={"vip": False, "n": "3"}),
        ],
    )

    def traces(**metadata: str) -> list[int]:
        page = store.list_traces(project, TraceQuery(metadata=metadata))
        return sorted(int(t.trace_id, 16) for t in page.items)

    def sessions(**metadata: str) -> list[str]:
        page = store.list_sessions(project, SessionQuery(metadata=metadata))
        return sorted(s.session_id for s in page.items)

    assert traces(vip="true") == [1] and sessions(vip="true") == ["s1"]
    assert traces(vip="false") == [2] and sessions(vip="false") == ["s2"]
    assert traces(beta="false") == [1]
    assert traces(vip="1") == [] and traces(vip="0") == []  # a boolean is not a number
    assert traces(n="3") == [1, 2] and traces(ratio="0.5") == [1]
    assert traces(plan="pro", vip="true") == [1]
    assert traces(x='{"a":1}') == [1]


def test_a_span_sent_twice_changed_shows_one_value_everywhere(store: Store):
    """A span sent again with another value for a key: SQLite keeps the span's first
    copy, ClickHouse (which keeps both until a merge) the greater JSON text. Either way
    the page, the detail and the filter show one value, the same on every read."""
    project = store.create_project("p").id
    for trace, values in ((1, ("a", "b")), (2, ("b", "a"))):
        for value in values:
            store.write_spans(
                project, [record(trace, 1, session=f"s{trace}", metadata={"k": value})]
            )
    for trace in (1, 2):
        trace_id = f"{trace:032x}"
        (listed,) = store.list_traces(project, TraceQuery(session_id=f"s{trace}")).items
        detail = store.get_trace(project, trace_id)
        assert detail is not None and listed.metadata == detail.metadata
        assert detail.metadata["k"] in ("a", "b")
        for value in ("a", "b"):
            found = store.list_traces(
                project, TraceQuery(session_id=f"s{trace}", metadata={"k": value})
            )
            assert [t.trace_id for t in found.items] == (
                [trace_id] if value == detail.metadata["k"] else []
            )
        assert store.get_trace(project, trace_id) == detail


def test_a_trace_detail_lists_its_spans_by_start_then_id(store: Store):
    project = store.create_project("p").id
    # Exports out of order; three spans start together, their ids against write order.
    store.write_spans(project, [record(1, 9, 1, start=5), record(1, 7, 1, start=5)])
    store.write_spans(project, [record(1, 3, 1, start=9), record(1, 8, 1, start=5)])
    store.write_spans(project, [record(1, 1, length=50), record(1, 2, 1, start=1)])
    trace = store.get_trace(project, f"{1:032x}")
    assert trace is not None
    assert [int(s.span_id, 16) for s in trace.spans] == [1, 2, 7, 8, 9, 3]


def test_a_late_span_moves_a_trace_into_a_session(store: Store):
    project = store.create_project("p").id
    store.write_spans(project, [record(1, 1, session=None)])
    assert store.list_sessions(project, SessionQuery()).items == []
    store.write_spans(project, [record(1, 2, 1, start=5, session="late")])
    assert store.get_session(project, "late").trace_count == 1


def test_a_conversation_written_turn_by_turn(store: Store):
    """Next turns, a late turn, a resent turn and a late span of a stored turn: the
    session always totals its traces, however each write rolled it up."""
    project = store.create_project("p").id

    def turn(n: int, start: int, **fields) -> list[SpanRecord]:
        return [
            record(
                n,
                100 + n,
                start=start,
                length=50,
                session="s",
                user=f"u{n % 2}",
                input=f'"in {n}"',
                output=f'"out {n}"',
            ),
            record(n, 200 + n, 100 + n, start=start + 5, length=10, **fields),
        ]

    for n in range(1, 6):
        store.write_spans(project, turn(n, n * 100, tokens=(n, 1), cost=0.1 * n))
    store.write_spans(project, turn(9, 50, tokens=(9, 1)))  # late: starts before turn 1
    store.write_spans(project, turn(3, 300, tokens=(3, 1), cost=0.3))  # resent
    store.write_spans(
        project, [record(4, 300, 104, start=420, length=5, error=True, tokens=(40, 0))]
    )  # a late span of turn 4
    store.write_spans(project, turn(6, 600, tokens=(6, 1)))
    session = store.get_session(project, "s")
    assert session.trace_count == 7 and session.span_count == 15
    assert session.input_tokens == 1 + 2 + 3 + 4 + 5 + 9 + 40 + 6
    assert session.output_tokens == 7 and session.error_count == 1
    assert session.cost_usd == pytest.approx(0.1 + 0.2 + 0.3 + 0.4 + 0.5)
    assert session.duration_ms == 650 - 50
    assert session.user_ids == ["u1", "u0"]  # in the order of the turns' starts
    assert (session.first_input, session.last_output) == ('"in 9"', '"out 6"')
    assert [t.trace_id for t in session.traces] == [f"{n:032x}" for n in (9, 1, 2, 3, 4, 5, 6)]
    assert store.list_sessions(project, SessionQuery()).items[0].trace_count == 7


def test_projects_do_not_see_each_other(store: Store):
    a, b = store.create_project("a").id, store.create_project("b").id
    store.write_spans(a, [record(1, 1, session="s")])
    store.write_spans(b, [record(1, 1, session="s"), record(1, 2, 1)])
    assert store.get_trace(a, f"{1:032x}").span_count == 1
    assert store.get_trace(b, f"{1:032x}").span_count == 2
    assert store.get_session(a, "s").span_count == 1
    assert store.list_traces(store.create_project("c").id, TraceQuery()).items == []


def test_paging_is_complete_with_ties(store: Store):
    project = store.create_project("p").id
    # Ten sessions ending at the same instant: the id breaks the tie.
    store.write_spans(project, [record(i, i, start=0, session=f"s{i}") for i in range(1, 11)])
    seen, cursor = [], None
    while True:
        page = store.list_sessions(project, SessionQuery(limit=3, cursor=cursor))
        seen += [s.session_id for s in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"s{i}" for i in range(1, 11)) and len(seen) == 10


def test_keys(store: Store):
    project = store.create_project("p")
    assert store.create_project("p") == project  # same name, same project
    key = store.create_key(project.id)
    access = store.access_for_key(key)
    assert access.project == project and access.scope == "full" and access.can_read
    assert store.access_for_key(key + "x") is None
    (info,) = store.list_keys()
    assert key not in info.model_dump_json() and key.startswith(info.prefix)
    assert store.revoke_key(info.id) and not store.revoke_key(info.id)
    assert store.access_for_key(key) is None


def test_ingest_only_keys_and_rotation(store: Store):
    project = store.create_project("p")
    key = store.create_key(project.id, "ingest")
    access = store.access_for_key(key)
    assert access.project == project and access.scope == "ingest" and not access.can_read
    (info,) = store.list_keys()
    successor = store.rotate_key(info.id)
    assert successor and successor != key
    assert store.access_for_key(key) is None  # the old key stops at once
    assert store.access_for_key(successor).scope == "ingest"  # same project and scope
    assert store.rotate_key(info.id) is None  # a revoked key has no successor


# --- scores ------------------------------------------------------------------------------


def score(
    score_id: str,
    name: str,
    value: float | bool | str,
    *,
    session: str | None = None,
    trace: int | None = None,
    span: int | None = None,
    at: int = 0,
    source: str = "api",
    comment: str | None = None,
) -> ScoreRecord:
    """A validated score as ``scoring.prepare`` makes it, written ``at`` ms after T0."""
    if isinstance(value, bool):
        data_type, number, label = "boolean", float(value), None
    elif isinstance(value, str):
        data_type, number, label = "categorical", None, value
    else:
        data_type, number, label = "numeric", float(value), None
    return ScoreRecord(
        id=score_id,
        name=name,
        data_type=data_type,
        value=number,
        label=label,
        session_id=session,
        trace_id=f"{trace:032x}" if trace else None,
        span_id=f"{span:016x}" if span else None,
        source=source,
        author=None,
        comment=comment,
        created_ns=T0 + at * MS,
    )


def summary(count: int, average: float | None = None, label: str | None = None) -> ScoreSummary:
    return ScoreSummary(count=count, average=average, label=label)


def test_scores_write_replace_retry_and_delete(store: Store):
    project = store.create_project("p").id
    store.write_spans(project, [record(1, 1, session="s")])
    store.write_scores(
        project,
        [
            score("a", "quality", 0.25, session="s", at=1),
            score("b", "quality", 1, session="s", at=2),
        ],
    )
    assert store.get_session(project, "s").scores == {"quality": summary(2, 0.625)}
    (listed,) = store.list_sessions(project, SessionQuery()).items
    assert listed.scores == {"quality": summary(2, 0.625)}

    # The same id again replaces the score; a retry of it (a later write of equal
    # content) changes nothing, not even its time.
    store.write_scores(project, [score("a", "quality", 0.75, session="s", at=3, comment="hm")])
    store.write_scores(project, [score("a", "quality", 0.75, session="s", at=9, comment="hm")])
    replaced = store.get_scores(project, ["a", "nothing"])
    assert list(replaced) == ["a"]
    assert replaced["a"].value == 0.75 and replaced["a"].comment == "hm"
    assert replaced["a"].created_at == ns_to_datetime(T0 + 3 * MS)
    assert store.get_session(project, "s").scores == {"quality": summary(2, 0.875)}
    assert len(store.list_scores(project, ScoreQuery(session_id="s")).items) == 2

    assert store.delete_score(project, "b")
    assert not store.delete_score(project, "b")
    assert store.get_scores(project, ["b"]) == {}
    assert store.get_session(project, "s").scores == {"quality": summary(1, 0.75)}
    assert store.delete_score(project, "a")
    assert store.get_session(project, "s").scores == {}
    assert store.list_sessions(project, SessionQuery()).items[0].scores == {}
    assert store.list_scores(project, ScoreQuery()).items == []

    # A deleted id written again is a score again.
    store.write_scores(project, [score("b", "quality", 0.5, session="s", at=10)])
    assert store.get_session(project, "s").scores == {"quality": summary(1, 0.5)}
    # A replacement that names another target leaves the first one's summary.
    store.write_scores(project, [score("b", "quality", 0.5, session="s", trace=1, at=11)])
    session = store.get_session(project, "s")
    assert session.scores == {} and session.traces[0].scores == {"quality": summary(1, 0.5)}
    # And one under another name and session is listed under those only.
    store.write_scores(project, [score("b", "thumbs", True, session="t", at=12)])
    assert [s.id for s in store.list_scores(project, ScoreQuery(name="thumbs")).items] == ["b"]
    assert store.list_scores(project, ScoreQuery(name="quality")).items == []
    assert store.list_scores(project, ScoreQuery(session_id="s")).items == []
    assert store.get_trace(project, f"{1:032x}").scores == {}


def test_span_scores_roll_up_into_their_trace(store: Store):
    project = store.create_project("p").id
    store.write_spans(project, [record(1, 1, session="s"), record(1, 2, 1, start=2)])
    store.write_scores(
        project,
        [
            score("t1", "helpful", True, trace=1, session="s", at=1),
            score("t2", "helpful", False, trace=1, span=2, at=2),
            score("t3", "helpful", True, trace=1, span=1, at=3),
            # The latest label is the latest written, whatever order they arrive in.
            score("t4", "topic", "refund", trace=1, span=2, at=8),
            score("t5", "topic", "billing", trace=1, at=5),
            score("s1", "topic", "other", session="s", at=9),
        ],
    )
    expected = {"helpful": summary(3, 2 / 3), "topic": summary(2, None, "refund")}
    trace_id = f"{1:032x}"
    assert store.get_trace(project, trace_id).scores == expected
    (listed,) = store.list_traces(project, TraceQuery()).items
    assert listed.scores == expected
    session = store.get_session(project, "s")
    assert session.traces[0].scores == expected
    assert session.scores == {"topic": summary(1, None, "other")}  # only its own
    span_scores = store.list_scores(
        project, ScoreQuery(trace_id=trace_id.upper(), span_id=f"{2:016x}")
    )
    assert [s.id for s in span_scores.items] == ["t4", "t2"]  # newest first
    assert [s.value for s in span_scores.items] == ["refund", False]


def test_a_score_may_arrive_before_its_spans(store: Store):
    project = store.create_project("p").id
    store.write_scores(
        project,
        [score("early", "thumbs", True, session="later"), score("t", "thumbs", False, trace=7)],
    )
    assert store.get_session(project, "later") is None
    assert [s.id for s in store.list_scores(project, ScoreQuery(session_id="later")).items] == [
        "early"
    ]
    store.write_spans(project, [record(7, 1, session="later")])
    session = store.get_session(project, "later")
    assert session.scores == {"thumbs": summary(1, 1.0)}
    assert session.traces[0].scores == {"thumbs": summary(1, 0.0)}
    assert store.list_sessions(project, SessionQuery()).items[0].scores == session.scores
    filtered = store.list_sessions(
        project, SessionQuery(scores=[ScoreFilter(name="thumbs", op="=", value=1.0)])
    )
    assert [s.session_id for s in filtered.items] == ["later"]


def _session_ids(store: Store, project: int, *filters: ScoreFilter, **query) -> list[str]:
    """Every page of the sessions list (two a page) with these filters."""
    seen, cursor = [], None
    while True:
        page = store.list_sessions(
            project, SessionQuery(limit=2, cursor=cursor, scores=list(filters), **query)
        )
        seen += [s.session_id for s in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return seen


def test_score_filters(store: Store):
    project = store.create_project("p").id
    # Sessions s1..s5, one trace each, s5 latest; the traces of s2 and s4 failed.
    store.write_spans(
        project,
        [
            record(i, i, start=i * 100, session=f"s{i}", user="u", error=i in (2, 4))
            for i in range(1, 6)
        ],
    )
    store.write_scores(
        project,
        [
            score("1q", "quality", 0.875, session="s1"),
            score("1t", "thumbs", True, session="s1"),
            score("1c", "topic", "billing", session="s1"),
            score("2q", "quality", 0.25, session="s2"),
            score("2r", "quality", 0.75, session="s2"),  # average 0.5
            score("2t", "thumbs", False, session="s2"),
            score("3c", "topic", "refund", session="s3"),
            score("4q", "quality", 0.5, session="s4"),
            # On a trace, not on its session: session filters do not see it.
            score("5q", "quality", 0.125, trace=5, session="s5"),
        ],
    )

    def f(name: str, op: str, value: float | str) -> ScoreFilter:
        return ScoreFilter(name=name, op=op, value=value)

    assert _session_ids(store, project, f("quality", ">", 0.5)) == ["s1"]
    assert _session_ids(store, project, f("quality", ">=", 0.5)) == ["s4", "s2", "s1"]
    assert _session_ids(store, project, f("quality", "<", 0.875)) == ["s4", "s2"]
    assert _session_ids(store, project, f("quality", "<=", 0.875)) == ["s4", "s2", "s1"]
    assert _session_ids(store, project, f("quality", "=", 0.5)) == ["s4", "s2"]
    assert _session_ids(store, project, f("quality", "!=", 0.5)) == ["s1"]
    assert _session_ids(store, project, f("quality", "<", 0.2)) == []
    assert _session_ids(store, project, f("thumbs", "=", 1.0)) == ["s1"]  # true
    assert _session_ids(store, project, f("thumbs", "=", 0.0)) == ["s2"]  # false
    assert _session_ids(store, project, f("topic", "=", "billing")) == ["s1"]
    assert _session_ids(store, project, f("topic", "!=", "billing")) == ["s3"]
    assert _session_ids(store, project, f("quality", ">", "0.5")) == []  # a label: none
    missing_quality = ScoreFilter(name="quality", missing=True)
    assert _session_ids(store, project, missing_quality) == ["s5", "s3"]
    assert _session_ids(
        store, project, missing_quality, ScoreFilter(name="topic", missing=True)
    ) == ["s5"]
    # With the other filters, and sorted otherwise.
    assert _session_ids(store, project, f("quality", ">=", 0.5), status="error") == ["s4", "s2"]
    assert _session_ids(store, project, f("quality", ">=", 0.5), status="ok") == ["s1"]
    assert _session_ids(store, project, f("quality", ">=", 0.5), f("thumbs", "=", 0.0)) == ["s2"]
    assert _session_ids(store, project, f("quality", ">=", 0), user_id="u", sort="start") == [
        "s4",
        "s2",
        "s1",
    ]
    assert _session_ids(store, project, f("quality", ">=", 0), q="s2") == ["s2"]

    def trace_ids(*filters: ScoreFilter, **query) -> list[int]:
        seen, cursor = [], None
        while True:
            page = store.list_traces(
                project, TraceQuery(limit=1, cursor=cursor, scores=list(filters), **query)
            )
            seen += [int(t.trace_id, 16) for t in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return seen

    store.write_scores(
        project,
        [score("3q", "quality", 0.5, trace=3, span=3), score("3l", "topic", "refund", trace=3)],
    )
    assert trace_ids(f("quality", "<", 0.25)) == [5]
    assert trace_ids(f("quality", ">", 0)) == [5, 3]
    assert trace_ids(f("quality", ">", 0), status="ok") == [5, 3]
    assert trace_ids(f("quality", ">", 0), session_id="s3") == [3]
    assert trace_ids(f("topic", "=", "refund")) == [3]
    assert trace_ids(ScoreFilter(name="quality", missing=True)) == [4, 2, 1]
    assert trace_ids(ScoreFilter(name="quality", missing=True), status="error") == [4, 2]


def test_list_scores_filters_and_pages(store: Store):
    project = store.create_project("p").id
    written = [
        score(
            f"x{i}",
            "quality" if i % 2 else "topic",
            0.5 if i % 2 else "a",
            session="s" if i < 6 else "t",
            trace=1 if i in (2, 3) else (2 if i == 7 else None),
            at=i // 3,
            source="eval" if i == 4 else "api",
        )
        for i in range(9)
    ]
    store.write_scores(project, written)
    newest_first = sorted(written, key=lambda s: (s.created_ns, s.id), reverse=True)

    def listed(**query) -> list[str]:
        seen, cursor = [], None
        while True:
            page = store.list_scores(project, ScoreQuery(limit=2, cursor=cursor, **query))
            seen += [s.id for s in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return seen

    assert listed() == [s.id for s in newest_first]
    assert listed(session_id="s") == [s.id for s in newest_first if s.session_id == "s"]
    assert listed(trace_id=f"{1:032x}") == ["x3", "x2"]
    assert listed(trace_ids=[f"{1:032x}", f"{2:032X}"]) == ["x7", "x3", "x2"]
    assert listed(name="quality") == [s.id for s in newest_first if s.name == "quality"]
    assert listed(source="eval") == ["x4"]
    assert listed(name="quality", session_id="t") == ["x7"]


def test_a_names_scores_page_the_same_after_replacements_moves_and_deletions(store: Store):
    """Listing one name's scores (ClickHouse walks that name's entries, some left stale
    by what changed since) gives what the whole list gives for that name, at any page
    size."""
    project = store.create_project("p").id
    store.write_spans(project, [record(1, 1, session="s")])
    store.write_scores(
        project,
        [
            score(f"x{i}", "q", float(i), session="s", at=i, source="eval" if i % 3 else "api")
            for i in range(10)
        ]
        + [score("y0", "other", 1.0, session="s", at=4)],
    )
    store.write_scores(project, [score("x3", "q", 30.0, session="s", at=30)])  # to the front
    store.write_scores(project, [score("x5", "other", 5.0, session="s", at=5)])  # to another name
    assert store.delete_score(project, "x7")
    store.write_scores(project, [score("x8", "q", 8.0, session="s", at=2, source="api")])
    store.write_scores(project, [score("y0", "q", 1.0, session="s", at=6)])  # from another
    store.write_scores(project, [score("x1", "q", 1.0, session="s", at=1, source="api")])
    everything = store.list_scores(project, ScoreQuery(limit=100)).items

    def listed(limit: int, **query) -> list[str]:
        seen, cursor = [], None
        while True:
            page = store.list_scores(project, ScoreQuery(limit=limit, cursor=cursor, **query))
            seen += [s.id for s in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return seen

    expected = [s.id for s in everything if s.name == "q"]
    assert expected == ["x3", "x9", "y0", "x6", "x4", "x8", "x2", "x1", "x0"]
    for limit in (1, 2, 3, 50):
        assert listed(limit, name="q") == expected
        assert listed(limit, name="q", source="api") == [
            s.id for s in everything if s.name == "q" and s.source == "api"
        ]
    assert listed(1, name="other") == ["x5"]
    assert listed(1, name="nothing") == []


def test_a_score_names_type_is_read_for_a_write(store: Store):
    """The type a write must keep (``store/name_types.py``): its configuration's, else
    that of the name's scores (a score moved to another name counts there, a name whose
    scores were all deleted is free), else the write's own first of that name."""
    project, other = store.create_project("p").id, store.create_project("q").id
    store.write_scores(
        project,
        [
            score("a", "helpful", True, session="s", at=1),
            score("b", "tone", "calm", session="s"),
            score("c", "gone", 3.0, session="s"),
            score("d", "moved", 2.0, session="s"),
        ],
    )
    store.write_scores(project, [score("d", "tone", "warm", session="s", at=2)])  # renamed
    assert store.delete_score(project, "c")
    store.write_scores(other, [score("e", "fresh", 1.0, session="s")])
    stars = ScoreConfig(name="stars", data_type="numeric")

    def refusals(*records: ScoreRecord) -> list[str | None]:
        types = name_types(store, project, {"stars": stars})
        return [types.refusal(r) for r in records]

    assert refusals(score("x", "helpful", False, session="t")) == [None]
    [refused] = refusals(score("x", "helpful", 4.0, session="t"))
    assert refused is not None and "'helpful' holds boolean" in refused and "numeric" in refused
    assert refusals(score("x", "tone", 1.0, session="t"))[0] is not None
    # "gone" lost its only score, "moved" its only one to "tone", "fresh" is another
    # project's: each takes the type of the write's first score of it.
    found = refusals(
        score("x", "gone", "label", session="t"),
        score("y", "moved", True, session="t"),
        score("z", "fresh", "label", session="t"),
        score("w", "fresh", 2.0, session="t"),
        score("v", "stars", 2.0, session="t"),  # configured: its configuration decides
    )
    assert [found[i] for i in (0, 1, 2, 4)] == [None] * 4
    assert found[3] is not None and "'fresh' holds categorical" in found[3], found


def test_the_store_refuses_a_score_or_a_configuration_of_another_type(store: Store):
    """The write itself keeps one type a name (in SQLite's write transaction, so two
    writers cannot both give a new name a type): a batch with a score of another type
    than its name's, or than an earlier score of the batch, is refused whole; so is a
    configuration of another type than its name's scores. A copy of another store
    (``check_types=False``) keeps what it copies."""
    project = store.create_project("p").id
    store.write_scores(project, [score("a", "helpful", True, session="s", at=1)])
    with pytest.raises(Conflict, match="'helpful' holds boolean values: a numeric"):
        store.write_scores(
            project, [score("b", "fine", 1.0, session="s"), score("c", "helpful", 4.0, session="s")]
        )
    with pytest.raises(Conflict, match="'fresh' holds numeric values: a categorical"):
        store.write_scores(
            project, [score("d", "fresh", 2.0, session="s"), score("e", "fresh", "hi", session="s")]
        )
    assert [s.id for s in store.list_scores(project, ScoreQuery(session_id="s")).items] == ["a"]

    with pytest.raises(
        Conflict, match="'helpful' holds boolean values: it cannot be configured as numeric"
    ):
        store.put_score_config(project, ScoreConfig(name="helpful", data_type="numeric"))
    assert store.list_score_configs(project) == []
    store.put_score_config(project, ScoreConfig(name="helpful", data_type="boolean"))
    store.put_score_config(project, ScoreConfig(name="unused", data_type="numeric"))
    assert [c.name for c in store.list_score_configs(project)] == ["helpful", "unused"]

    store.write_scores(project, [score("f", "helpful", 4.0, session="s", at=2)], check_types=False)
    assert store.get_scores(project, ["f"])["f"].data_type == "numeric"


def test_score_configs(store: Store):
    project = store.create_project("p").id
    assert store.list_score_configs(project) == []
    thumbs = ScoreConfig(name="thumbs", data_type="boolean", description="user said")
    quality = ScoreConfig(name="quality", data_type="numeric", min_value=0, max_value=1)
    topic = ScoreConfig(name="topic", data_type="categorical", labels=["billing", "refund"])
    for config in (thumbs, quality, topic):
        store.put_score_config(project, config)
    assert store.list_score_configs(project) == [quality, thumbs, topic]
    wider = quality.model_copy(update={"max_value": 10.0, "description": "wider"})
    store.put_score_config(project, wider)
    assert store.list_score_configs(project) == [wider, thumbs, topic]
    assert store.delete_score_config(project, "thumbs")
    assert not store.delete_score_config(project, "thumbs")
    assert not store.delete_score_config(project, "nothing")
    assert store.list_score_configs(project) == [wider, topic]
    store.put_score_config(project, thumbs)  # back after its deletion
    assert store.list_score_configs(project) == [wider, thumbs, topic]


def test_notes(store: Store):
    project = store.create_project("p").id
    first = store.add_note(project, NoteIn(session_id="s", body="looks wrong", author="ana"))
    second = store.add_note(
        project, NoteIn(session_id="s", body="fixed in v2", trace_id=f"{1:032X}")
    )
    other = store.add_note(project, NoteIn(session_id="t", body="other"))
    assert second.trace_id == f"{1:032x}" and first.author == "ana" and first.id != second.id
    assert store.list_notes(project, "s") == [first, second]  # oldest first
    assert store.list_notes(project, "t") == [other]
    assert store.list_notes(project, "nothing") == []
    assert store.delete_note(project, first.id)
    assert not store.delete_note(project, first.id)
    assert not store.delete_note(project, "nothing")
    assert store.list_notes(project, "s") == [second]


def test_allowed_origins(store: Store):
    project = store.create_project("p").id
    assert store.allowed_origins(project) == []
    store.set_allowed_origins(
        project, ["https://b.example", "https://a.example", "https://b.example"]
    )
    assert store.allowed_origins(project) == ["https://a.example", "https://b.example"]
    store.set_allowed_origins(project, [])
    assert store.allowed_origins(project) == []


def test_context_use_rolls_up_and_sorts_and_filters_sessions(store: Store):
    """A trace's context use is its fullest LLM call (input tokens over the model's
    window: gpt-4o-mini's is 128,000 tokens, claude-3-5-haiku's 200,000); a session's
    peak is its fullest trace, however its traces were written."""
    project = store.create_project("p").id

    def turn(trace: int, session: str, start: int, *calls: tuple[str | None, int]):
        spans = [record(trace, trace * 100, start=start, session=session)]
        for i, (model, tokens) in enumerate(calls, 1):
            spans.append(
                record(
                    trace,
                    trace * 100 + i,
                    trace * 100,
                    start=start + i,
                    tokens=(tokens, 1),
                    model=model,
                )
            )
        return spans

    store.write_spans(project, turn(1, "small", 0, ("gpt-4o-mini", 12_800)))
    store.write_spans(
        project,
        turn(2, "small", 100, ("gpt-4o-mini", 32_000), ("claude-3-5-haiku-latest", 100_000)),
    )
    store.write_spans(project, turn(3, "full", 0, ("gpt-4o-mini", 96_000)))
    store.write_spans(project, turn(4, "unknown", 0, ("no-such-model", 1_000_000), (None, 5)))
    # A late call of the first turn, fuller than any: the session's peak follows.
    store.write_spans(project, [record(5, 500, start=300, session="late")])
    store.write_spans(project, turn(6, "late", 0, ("gpt-4o-mini", 6_400)))
    store.write_spans(project, [record(6, 699, 600, start=2, tokens=(64_000, 1), model="gpt-4o")])

    detail = store.get_session(project, "small")
    assert [t.context_use for t in detail.traces] == [0.1, 0.5]
    assert detail.peak_context_use == 0.5
    assert store.get_session(project, "unknown").peak_context_use is None
    assert store.get_session(project, "late").peak_context_use == 0.5
    by_context = store.list_sessions(project, SessionQuery(sort="context")).items
    assert [(s.session_id, s.peak_context_use) for s in by_context] == [
        ("full", 0.75),
        ("small", 0.5),
        ("late", 0.5),
        ("unknown", None),
    ]
    paged = store.list_sessions(project, SessionQuery(sort="context", limit=2))
    rest = store.list_sessions(
        project, SessionQuery(sort="context", limit=2, cursor=paged.next_cursor)
    )
    assert [s.session_id for s in paged.items + rest.items] == [s.session_id for s in by_context]
    fuller = store.list_sessions(project, SessionQuery(min_context_use=0.5)).items
    assert sorted(s.session_id for s in fuller) == ["full", "late", "small"]
    assert store.list_sessions(project, SessionQuery(min_context_use=0.8)).items == []


def test_session_inference_setting(store: Store):
    a, b = store.create_project("a").id, store.create_project("b").id
    assert store.session_inference(a) and store.session_inference(b)  # on by default
    store.set_session_inference(a, False)
    assert not store.session_inference(a) and store.session_inference(b)
    store.set_session_inference(a, True)
    assert store.session_inference(a)


def test_users_score_summaries(store: Store):
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
    users = {u.user_id: u.scores for u in store.list_users(project, UserQuery()).items}
    assert users == {
        "u": {"quality": summary(3, 0.5), "topic": summary(2, None, "b")},
        "v": {"quality": summary(1, 1.0), "topic": summary(1, None, "c")},
        "w": {},
    }


def test_scores_are_isolated_between_projects(store: Store):
    a, b = store.create_project("a").id, store.create_project("b").id
    for project in (a, b):
        store.write_spans(project, [record(1, 1, session="s")])
    store.write_scores(a, [score("x", "quality", 1, session="s"), score("y", "q", 1, trace=1)])
    store.put_score_config(a, ScoreConfig(name="quality", data_type="numeric"))
    note = store.add_note(a, NoteIn(session_id="s", body="a's"))
    store.set_allowed_origins(a, ["https://a.example"])

    # B sees none of it, by list or by id, and cannot delete it.
    assert store.get_scores(b, ["x", "y"]) == {}
    assert store.list_scores(b, ScoreQuery()).items == []
    assert not store.delete_score(b, "x")
    assert store.get_session(b, "s").scores == {}
    assert store.get_trace(b, f"{1:032x}").scores == {}
    on_quality = [ScoreFilter(name="quality", op=">", value=0)]
    assert store.list_sessions(b, SessionQuery(scores=on_quality)).items == []
    assert [
        s.session_id
        for s in store.list_sessions(
            b, SessionQuery(scores=[ScoreFilter(name="quality", missing=True)])
        ).items
    ] == ["s"]
    assert store.list_score_configs(b) == [] and not store.delete_score_config(b, "quality")
    assert store.list_notes(b, "s") == [] and not store.delete_note(b, note.id)
    assert store.allowed_origins(b) == []
    # B's score of the same id is B's own: A's is unchanged.
    store.write_scores(b, [score("x", "quality", 0, session="s")])
    assert store.get_scores(a, ["x"])["x"].value == 1.0
    assert store.get_session(a, "s").scores == {"quality": summary(1, 1.0)}
    assert store.get_session(b, "s").scores == {"quality": summary(1, 0.0)}
    assert store.list_notes(a, "s") == [note] and store.allowed_origins(a) == ["https://a.example"]


def test_data_survives_reopening(backend: str, tmp_path: Path):
    first = _open(backend, tmp_path)
    project = first.create_project("p").id
    key = first.create_key(project)
    first.write_spans(project, [record(1, 1, session="kept")])
    first.close()
    first.close()  # closing twice is harmless
    second = _open(backend, tmp_path)
    try:
        assert second.get_session(project, "kept").trace_count == 1
        assert second.access_for_key(key).project.id == project
    finally:
        second.close()


def test_sqlite_keeps_no_secret_and_one_copy_of_payloads(tmp_path: Path):
    store = open_store(f"sqlite://{tmp_path / 'raw.db'}")
    project = store.create_project("p").id
    key = store.create_key(project)
    payload = '{"marker": "' + "unique-payload-text " * 150 + '"}'
    store.write_spans(
        project,
        [
            record(
                1,
                1,
                input=payload,
                input_source="input.value",
                attributes={"input.value": payload, "k": 1},
            )
        ],
    )
    (span,) = store.get_trace(project, f"{1:032x}").spans
    assert span.attributes == {"input.value": payload, "k": 1}
    store.close()
    assert key.encode() not in (tmp_path / "raw.db").read_bytes()
    # The payload is kept once, compressed (the trace keeps a preview of its start).
    with sqlite3.connect(tmp_path / "raw.db") as conn:
        assert conn.execute(
            "SELECT typeof(input), instr(attributes, 'unique-payload') FROM spans"
        ).fetchone() == ("blob", 0)


def test_sqlite_keeps_short_payloads_as_text(tmp_path: Path):
    store = open_store(f"sqlite://{tmp_path / 'short.db'}")
    project = store.create_project("p").id
    store.write_spans(project, [record(1, 1, input="hi", output="é" * 200, session="s")])
    (span,) = store.get_trace(project, f"{1:032x}").spans
    assert (span.input, span.output) == ("hi", "é" * 200)
    assert store.get_session(project, "s").traces[0].output_preview == "é" * 200
    store.close()
    with sqlite3.connect(tmp_path / "short.db") as conn:
        # 400 bytes of UTF-8: under the threshold, so stored as text.
        assert conn.execute("SELECT typeof(input), typeof(output) FROM spans").fetchone() == (
            "text",
            "text",
        )


def test_a_cursor_is_refused_by_another_list_or_sort(store: Store):
    """A cursor names the list and sort it was made by: the keys of many sorts have the
    same types ((time, id) or (number, id)), and one read by another sort or list would
    start a wrong page (skip rows) where it must be refused."""
    project = store.create_project("p").id
    for i in range(1, 5):
        # Later sessions start later but last less: the sorts disagree.
        spans = record(
            i,
            i * 10,
            start=i * 100,
            length=100 - i * 10,
            session=f"s{i}",
            user=f"u{i}",
            tokens=(10 * (i % 3), 1),
            cost=0.5 * (i % 2),
        )
        store.write_spans(project, [spans])
    session_sorts = ("last_activity", "start", "duration", "cost", "tokens", "context")
    made = {
        sort: store.list_sessions(project, SessionQuery(sort=sort, limit=1)).next_cursor
        for sort in session_sorts
    }
    made["traces"] = store.list_traces(project, TraceQuery(limit=1)).next_cursor
    made["users"] = store.list_users(project, UserQuery(limit=1)).next_cursor
    assert all(made.values()), made

    def reads(made_by: str, sort: str) -> bool:
        cursor = made[made_by]
        try:
            if sort == "traces":
                store.list_traces(project, TraceQuery(cursor=cursor))
            elif sort == "users":
                store.list_users(project, UserQuery(cursor=cursor))
            else:
                store.list_sessions(project, SessionQuery(sort=sort, cursor=cursor))  # type: ignore[arg-type]
        except BadRequest as refused:
            assert "cursor" in str(refused)
            return False
        return True

    for made_by in made:
        for sort in made:
            assert reads(made_by, sort) == (made_by == sort), (made_by, sort)
