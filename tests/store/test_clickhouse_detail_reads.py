"""What the ClickHouse Users list, trace detail and session detail send the engine: a
fixed number of statements whatever the data holds, with no list of ids that grows
with it (at 10M spans the Users list's page over all time owned 100,000 traces, whose
ids went back to the client and then to the engine again, a thousand a statement, for
their score summaries: most of its wall time, docs/benchmarks.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.spans import T0, span_record
from tests.store.clickhouse_statements import own_store, recorded_with_params
from tests.store.test_contract import record, score, summary
from threadline.server.model import UserQuery
from threadline.server.store.clickhouse.store import ClickHouseStore

pytestmark = pytest.mark.clickhouse


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    with own_store(tmp_path) as opened:
        yield opened


def _longest_list(params: dict[str, Any]) -> int:
    return max((len(v) for v in params.values() if isinstance(v, list | tuple)), default=0)


def test_users_list_reads_its_score_summaries_in_its_own_statement(store: ClickHouseStore):
    project = store.create_project("p").id
    # Two users with 1,200 traces between them (more than one IN list's worth), each
    # trace in a session of its own; a few of them scored, and a session.
    traces = 1200
    store.write_spans(
        project,
        [
            record(t, t, start=t, session=f"s{t}", user="u" if t % 2 else "v")
            for t in range(1, traces + 1)
        ],
    )
    store.write_scores(
        project,
        [
            score("a", "quality", 1, trace=1),
            score("b", "quality", 0, trace=3),
            score("c", "quality", 0.5, trace=2),
            score("d", "topic", "x", session="s1000"),
        ],
    )
    statements = recorded_with_params(store, scores=True)
    page = store.list_users(project, UserQuery(limit=10))
    assert {u.user_id: u.trace_count for u in page.items} == {"u": 600, "v": 600}
    assert {u.user_id: u.scores for u in page.items} == {
        "u": {"quality": summary(2, 0.5)},
        "v": {"quality": summary(1, 0.5), "topic": summary(1, None, "x")},
    }
    # The page's rollups are read in the statement that reads the page, and no ids of
    # the users' traces or sessions are sent (only the picked users).
    reading_scores = [sql for sql, _ in statements if "score_rollups" in sql]
    assert len(reading_scores) == 1 and "user_activity" in reading_scores[0]
    assert max(_longest_list(params) for _, params in statements) <= 11


def test_trace_and_session_details_are_one_statement_each(store: ClickHouseStore):
    project = store.create_project("p").id
    store.write_spans(
        project,
        [record(1, 1, session="s", tokens=(1, 2)), record(1, 2, 1, start=1, input='"q"')],
    )
    store.write_spans(project, [record(2, 3, start=5, session="s", tags=["t"])])
    store.write_scores(
        project,
        [
            score("a", "quality", 1, trace=1),
            score("b", "quality", 0, trace=1),
            score("c", "topic", "x", session="s"),
        ],
    )
    statements = recorded_with_params(store, scores=True)
    trace = store.get_trace(project, f"{1:032x}")
    assert len(statements) == 1
    assert trace is not None
    assert [s.span_id for s in trace.spans] == [f"{1:016x}", f"{2:016x}"]
    assert trace.spans[1].input == "q"
    assert trace.scores == {"quality": summary(2, 0.5)}
    statements.clear()
    session = store.get_session(project, "s")
    assert len(statements) == 1
    assert session is not None and session.total_tokens == 3
    assert session.scores == {"topic": summary(1, None, "x")}
    assert {t.trace_id: t.scores for t in session.traces} == {
        f"{1:032x}": {"quality": summary(2, 0.5)},
        f"{2:032x}": {},
    }
    assert [t.tags for t in session.traces] == [[], ["t"]]
    assert store.get_trace(project, f"{9:032x}") is None
    assert store.get_session(project, "absent") is None


def test_a_span_sent_again_changed_shows_the_copy_a_merge_keeps(store: ClickHouseStore):
    """The spans table keeps a span's last written copy once merged (a ReplacingMergeTree
    without a version); the detail shows that copy before the merge too, whichever
    order the engine reads the parts in."""
    project = store.create_project("p").id
    trace_id = f"{1:032x}"
    for trace, names in ((1, ("first", "second")), (2, ("second", "first"))):
        for name in names:
            store.write_spans(project, [span_record(trace, 1, T0, name=name), record(trace, 2, 1)])

    def names() -> list[str]:
        found = [store.get_trace(project, f"{t:032x}") for t in (1, 2)]
        return [t.spans[0].name for t in found if t is not None]

    assert names() == ["second", "first"]
    store._ch.command("OPTIMIZE TABLE spans FINAL")
    ((copies,),) = store._rows("SELECT count() FROM spans WHERE trace_id = %(t)s", {"t": trace_id})
    assert copies == 2  # one row a span id
    assert names() == ["second", "first"]
