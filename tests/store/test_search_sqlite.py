"""The SQLite search index's own parts: a store from before the index is indexed when it
opens, the index is consistent after deletions (FTS5's integrity check), and the text is
not stored a second time."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from tests.store.test_contract import record
from threadline.server.model import SessionQuery, TraceQuery
from threadline.server.search.query import parse
from threadline.server.store.base import SpanBatch
from threadline.server.store.sqlite import SQLiteStore, search
from threadline.server.store.sqlite.driver import sqlite3


def _spans(n: int) -> list:
    return [
        record(
            i,
            i,
            session=f"s{i % 3}",
            input=json.dumps([{"role": "user", "content": f"question {i} about kumquats"}]),
            output=json.dumps([{"role": "assistant", "content": "x" * 600 + f" answer{i}"}]),
        )
        for i in range(1, n + 1)
    ]


def test_a_store_from_before_the_index_is_indexed_when_it_opens(tmp_path: Path):
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    project = store.create_project("p").id
    store.write_spans(project, _spans(30))
    store.close()
    # As a store of the version before, with no index, when the index's migration runs.
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TABLE search_text; DROP TABLE search_docs; DROP TABLE search_backfill;"
        " UPDATE trace_keys SET numbered = 0;"
    )
    migration = resources.files("threadline.server.store.sqlite") / "migrations"
    conn.executescript((migration / "0009_search.sql").read_text())
    # Its key table became every trace's keys (trace_keys, 0018).
    conn.executescript("DROP TABLE search_traces;")
    conn.close()
    store = SQLiteStore(path)
    try:
        found = store.list_sessions(project, SessionQuery(q="kumquats"))
        assert sorted(s.session_id for s in found.items) == ["s0", "s1", "s2"]
        assert [
            s.session_id for s in store.list_sessions(project, SessionQuery(q="answer7")).items
        ] == ["s1"]
        # Spans written after are indexed once, as always.
        store.write_spans(project, _spans(31))
        matches = store.find_in_session(project, "s1", "answer31")
        assert len(matches) == 1
    finally:
        store.close()


def test_deletion_leaves_a_consistent_index(tmp_path: Path):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    store.write_spans(project, _spans(60))
    store.delete_sessions(project, ["s1"])
    store.delete_traces(project, [f"{2:032x}"])
    conn = sqlite3.connect(tmp_path / "t.db")
    try:
        # FTS5 checks its index against the documents it is given back: the remaining
        # spans' text, read here as the store indexes it.
        conn.execute("INSERT INTO search_text (search_text, rank) VALUES ('integrity-check', 0)")
        left = conn.execute("SELECT count(*) FROM search_docs").fetchone()[0]
        assert left == 60 - 20 - 1
        # No word of a deleted span is left in the index's vocabulary.
        conn.execute("CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, search_text, row)")
        words = {row[0] for row in conn.execute("SELECT term FROM temp.words")}
        assert "answer4" not in words and "answer2" not in words and "answer3" in words
    finally:
        conn.close()
        store.close()


def test_common_and_rare_queries_find_the_same_rows(tmp_path: Path, monkeypatch):
    """Both plans of a list's search (rows walked in order and checked one by one, or
    the matches collected first) give the same pages."""
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    store.write_spans(project, _spans(90))

    def pages(**query) -> tuple[list[str], list[str]]:
        sessions, traces, cursor = [], [], None
        while True:
            page = store.list_sessions(project, SessionQuery(limit=1, cursor=cursor, **query))
            sessions += [s.session_id for s in page.items]
            if not (cursor := page.next_cursor):
                break
        while True:
            found = store.list_traces(project, TraceQuery(limit=7, cursor=cursor, **query))
            traces += [t.trace_id for t in found.items]
            if not (cursor := found.next_cursor):
                break
        return sessions, traces

    queries = ["kumquats", "answer7", "answer1*", '"about kumquats"', "s1", "question 5"]
    rare = {q: pages(q=q) for q in queries}
    monkeypatch.setattr(search, "_COMMON_BOUNDS", (1, 1))
    with store._read() as conn:
        assert search.is_common(conn, parse("kumquats"))
    common = {q: pages(q=q) for q in queries}
    assert common == rare
    assert rare["kumquats"][0] == ["s2", "s1", "s0"] and len(rare["kumquats"][1]) == 90
    assert len(rare["answer1*"][1]) == 11  # answer1 and answer10 to answer19
    store.close()


def test_an_export_sent_again_with_more_spans_indexes_only_the_new_ones(tmp_path: Path):
    """The documents are made before the transaction from the whole export; a span the
    store holds already keeps its first version in the index too, or deleting it would
    give FTS5 other words than it indexed."""
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    first = record(1, 1, session="s", input='"the first version mentions apricots"')
    store.write_spans(project, [first, record(1, 2, session="s", input='"and figs"')])
    changed = record(1, 1, session="s", input='"a changed copy mentions quinces"')
    late = record(1, 3, session="s", input='"a late span about damsons"')
    store.write_spans(project, [changed, late, late])
    found = {
        word: [t.trace_id for t in store.list_traces(project, TraceQuery(q=word)).items]
        for word in ("apricots", "quinces", "damsons")
    }
    assert found == {"apricots": [f"{1:032x}"], "quinces": [], "damsons": [f"{1:032x}"]}
    conn = sqlite3.connect(tmp_path / "t.db")
    try:
        assert conn.execute("SELECT span_ids FROM search_docs ORDER BY doc").fetchall() == [
            (f"{1:016x} {2:016x}",),
            (f"{3:016x}",),
        ]
        store.delete_traces(project, [f"{1:032x}"])
        conn.execute("INSERT INTO search_text (search_text, rank) VALUES ('integrity-check', 0)")
        conn.execute("CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, search_text, row)")
        assert conn.execute("SELECT count(*) FROM temp.words").fetchone()[0] == 0
    finally:
        conn.close()
        store.close()


def test_exports_committed_together_index_the_first_copy_of_a_span(tmp_path: Path):
    """Exports written in one transaction (group commit) that share a trace: the trace's
    spans are indexed once, each as its first copy, as the insert keeps them."""
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    first = [record(1, 1, session="s", input='"the first version mentions apricots"')]
    again = [
        record(1, 1, session="s", input='"a changed copy mentions quinces"'),
        record(1, 2, session="s", input='"a second span about damsons"'),
    ]
    store.write_span_batches(
        [
            SpanBatch(project, batch, store.span_preparer()(project, batch))
            for batch in (first, again)
        ]
    )
    found = {
        word: [t.trace_id for t in store.list_traces(project, TraceQuery(q=word)).items]
        for word in ("apricots", "quinces", "damsons")
    }
    assert found == {"apricots": [f"{1:032x}"], "quinces": [], "damsons": [f"{1:032x}"]}
    conn = sqlite3.connect(tmp_path / "t.db")
    try:
        store.delete_traces(project, [f"{1:032x}"])
        conn.execute("INSERT INTO search_text (search_text, rank) VALUES ('integrity-check', 0)")
        conn.execute("CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, search_text, row)")
        assert conn.execute("SELECT count(*) FROM temp.words").fetchone()[0] == 0
    finally:
        conn.close()
        store.close()


def test_relevance_reads_the_matches_first_and_each_trace_by_key(tmp_path: Path):
    # SQLite 3.51's planner, left to itself, walked every trace of the project and
    # looked for each among the matches: seconds at 1M spans.
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    store.write_spans(project, _spans(40))
    conn = sqlite3.connect(tmp_path / "t.db")
    try:
        plan = [
            row[3]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN " + search.RANKED_HITS, ("answer7", 5000, project)
            )
        ]
        assert not any("trace_keys_identity" in step for step in plan), plan
        assert any("INTEGER PRIMARY KEY" in step for step in plan), plan
        ranked = search.ranked_traces(conn, project, parse("answer7"), "")
        assert list(ranked) == [f"{7:032x}"]
    finally:
        conn.close()
        store.close()


def test_a_text_another_span_quotes_whole_is_indexed_once(tmp_path: Path):
    """A tool's result quoted in the prompt of the call after it: its words are given to
    the index once (the prompt holds them), and each span is still found by its own
    text, the tool's included; deleting the trace leaves a consistent index."""
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    result = "The retrieved paragraph describes the quince orchards of Aragon at length."
    prompt = f"Context:\n{result}\n\nQuestion: where do quinces grow?"
    spans = [
        record(1, 1, session="s"),
        record(
            1, 2, 1, start=1, session="s", input='{"query": "quinces"}', output=json.dumps(result)
        ),
        record(
            1,
            3,
            1,
            start=2,
            session="s",
            input=json.dumps([{"role": "user", "content": prompt}]),
            output=json.dumps([{"role": "assistant", "content": "In Aragon."}]),
        ),
        record(2, 4, session="s", output=json.dumps(result)),  # alone in its trace
    ]
    store.write_spans(project, spans)
    conn = sqlite3.connect(tmp_path / "t.db")
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, search_text, row)")
        counts = dict(conn.execute("SELECT term, cnt FROM temp.words"))
        assert counts["retrieved"] == 2  # once in trace 1's document, once in trace 2's
        matches = store.find_in_session(project, "s", '"quince orchards of aragon"')
        assert [(m.trace_id, m.span_id) for m in matches] == [
            (f"{1:032x}", f"{2:016x}"),
            (f"{1:032x}", f"{3:016x}"),
            (f"{2:032x}", f"{4:016x}"),
        ]
        store.delete_traces(project, [f"{1:032x}"])
        conn.execute("INSERT INTO search_text (search_text, rank) VALUES ('integrity-check', 0)")
        counts = dict(conn.execute("SELECT term, cnt FROM temp.words"))
        assert counts["retrieved"] == 1 and "quinces" not in counts
    finally:
        conn.close()
        store.close()


def test_a_group_gives_the_index_one_segment_though_its_documents_came_out_of_order(
    tmp_path: Path,
):
    """FTS5 writes what it holds out as a new segment whenever a document's rowid is not
    above the last one's. A group whose second export adds to a trace of its first (that
    trace's document is made again, after the others) and to a trace stored before (an
    older key) still makes one segment a transaction, and every document is found."""
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    store.write_spans(project, [record(9, 1, input='"an earlier trace about plums"')])
    first = [record(1, 1, input='"apricots"'), record(2, 1, input='"figs"')]
    second = [
        record(1, 2, input='"quinces"'),
        record(3, 1, input='"damsons"'),
        record(9, 2, input='"a late span about pears"'),
    ]
    store.write_span_batches(
        [
            SpanBatch(project, batch, store.span_preparer()(project, batch))
            for batch in (first, second)
        ]
    )
    conn = sqlite3.connect(tmp_path / "t.db")
    try:
        (segments,) = conn.execute("SELECT count(DISTINCT segid) FROM search_text_idx").fetchone()
    finally:
        conn.close()
    found = {
        word: [t.trace_id for t in store.list_traces(project, TraceQuery(q=word)).items]
        for word in ("plums", "apricots", "figs", "quinces", "damsons", "pears")
    }
    store.close()
    assert segments == 2  # one a transaction
    assert found == {
        "plums": [f"{9:032x}"],
        "apricots": [f"{1:032x}"],
        "figs": [f"{2:032x}"],
        "quinces": [f"{1:032x}"],
        "damsons": [f"{3:032x}"],
        "pears": [f"{9:032x}"],
    }
