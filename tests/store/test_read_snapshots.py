"""Each read of the SQLite store sees one committed state, however many statements it
takes: a session's rollup and its traces, a trace's rollup and its spans, an exported
trace's head and its spans, a page and its score summaries agree even when the writer
commits between two of the read's statements.

The interleaving is made exact, not left to timing: the read's connection commits a
write (on the store's own writer connection, as the writer thread would) just before
the first of the read's statements that reads a given table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.spans import T0, span_record
from threadline.server.model import ScoreRecord, SpanRecord, TraceQuery
from threadline.server.store.sqlite import SQLiteStore
from threadline.server.store.sqlite.driver import sqlite3

SESSION = "conversation-1"


def _span(trace: int, span: int, tokens: int = 10) -> SpanRecord:
    return span_record(
        trace,
        trace * 100 + span,
        T0 + trace * 10**9 + span * 10**6,
        input_tokens=tokens,
        output_tokens=tokens,
        total_tokens=2 * tokens,
        session_id=SESSION,
    )


class _Interleaving:
    """A reader connection that runs ``write`` just before its first statement with
    ``before`` in its text; everything else goes to the connection itself."""

    def __init__(self, conn: Any, before: str, write: Callable[[], None]) -> None:
        self._conn = conn
        self._before = before
        self._write = write
        self.written = False

    def execute(self, sql: str, parameters: Any = ()) -> Any:
        if self._before in sql and not self.written:
            self._write()
            self.written = True
        return self._conn.execute(sql, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "threadline.db")
    try:
        yield opened
    finally:
        opened.close()


def _interleave(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch, before: str, write: Callable[[], None]
) -> list[_Interleaving]:
    """Make the store's next read commit ``write`` before its first statement with
    ``before`` in it; the list returned holds that read's connection once it ran."""
    read: Callable[[], AbstractContextManager[Any]] = store._read
    made: list[_Interleaving] = []

    @contextmanager
    def interleaved_once() -> Iterator[Any]:
        with read() as conn:
            if made:  # a later read (or one the write makes): left as it is
                yield conn
                return
            made.append(_Interleaving(conn, before, write))
            yield made[0]

    monkeypatch.setattr(store, "_read", interleaved_once)
    return made


def test_the_statements_of_one_read_see_one_committed_state(store: SQLiteStore):
    project = store.create_project("default").id
    store.write_spans(project, [_span(1, 0)])
    with store._read() as conn:
        before = conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
        store.write_spans(project, [_span(2, 0)])
        assert conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0] == before == 1
    with store._read() as conn:  # the next read sees the commit
        assert conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0] == 2


def test_a_session_detail_shows_its_rollup_with_the_traces_it_counts(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
):
    project = store.create_project("default").id
    store.write_spans(project, [_span(t, s) for t in (1, 2, 3) for s in (0, 1)])
    # A new trace of the session, committed after the session's row and before its traces.
    made = _interleave(
        store, monkeypatch, "FROM traces", lambda: store.write_spans(project, [_span(4, 0)])
    )
    detail = store.get_session(project, SESSION)
    assert made[0].written
    assert detail is not None
    assert detail.trace_count == len(detail.traces) == 3
    assert detail.span_count == sum(t.span_count for t in detail.traces) == 6
    assert detail.total_tokens == sum(t.total_tokens for t in detail.traces)
    later = store.get_session(project, SESSION)
    assert later is not None and later.trace_count == len(later.traces) == 4


def test_a_trace_detail_shows_its_rollup_with_the_spans_it_counts(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
):
    project = store.create_project("default").id
    store.write_spans(project, [_span(1, s) for s in range(3)])
    made = _interleave(
        store, monkeypatch, "FROM spans", lambda: store.write_spans(project, [_span(1, 3)])
    )
    detail = store.get_trace(project, f"{1:032x}")
    assert made[0].written
    assert detail is not None
    assert detail.span_count == len(detail.spans) == 3
    assert detail.total_tokens == sum(s.total_tokens or 0 for s in detail.spans)


def test_an_exported_trace_has_the_spans_its_head_counts(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
):
    project = store.create_project("default").id
    store.write_spans(project, [_span(t, s) for t in (1, 2) for s in range(3)])
    # After the traces' heads and scores, before their spans are read.
    made = _interleave(
        store,
        monkeypatch,
        "FROM spans",
        lambda: store.write_spans(project, [_span(1, 3), _span(2, 3)]),
    )
    found = store.trace_details_json(project, [f"{1:032x}", f"{2:032x}"])
    assert made[0].written
    for document in map(json.loads, found.values()):
        assert document["span_count"] == len(document["spans"]) == 3


def test_a_trace_page_shows_the_scores_of_the_state_it_lists(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
):
    project = store.create_project("default").id
    store.write_spans(project, [_span(1, 0)])
    score = ScoreRecord(
        id="score-1",
        name="helpful",
        data_type="NUMERIC",
        value=1.0,
        label=None,
        session_id=None,
        trace_id=f"{1:032x}",
        span_id=None,
        source="API",
        author=None,
        comment=None,
        created_ns=T0,
    )
    # The trace and its first score are committed together after the page's rows are
    # read: the page, of the state before, shows the trace without the score.
    made = _interleave(
        store,
        monkeypatch,
        "FROM score_rollups",
        lambda: (store.write_spans(project, [_span(2, 0)]), store.write_scores(project, [score])),
    )
    page = store.list_traces(project, TraceQuery(limit=10))
    assert made[0].written
    assert [t.trace_id for t in page.items] == [f"{1:032x}"]
    assert page.items[0].scores == {}
    assert store.list_traces(project, TraceQuery(limit=10)).items[1].scores != {}


def test_a_read_leaves_its_connection_out_of_any_transaction(store: SQLiteStore):
    project = store.create_project("default").id
    store.write_spans(project, [_span(1, 0)])
    with store._read() as conn:
        assert conn.in_transaction
        conn.execute("SELECT COUNT(*) FROM spans").fetchone()
    assert not conn.in_transaction
    with pytest.raises(sqlite3.Error), store._read() as failing:
        failing.execute("SELECT COUNT(*) FROM spans").fetchone()
        failing.execute("SELECT no_such_column FROM spans")
    assert not failing.in_transaction
    # Both went back to the pool, and a read taken from it sees the latest commit.
    store.write_spans(project, [_span(2, 0)])
    with store._read() as again:
        assert again in (conn, failing)
        assert again.execute("SELECT COUNT(*) FROM spans").fetchone()[0] == 2
