"""The traces' rollup table keyed by each trace's integer key (SQLite migration 0019): its
rowid is the key, no index of it is keyed by the random trace id, every read of a trace
by id finds its row through the one lookup (``trace_keys_identity``) and then the rowid,
and a store written at 0018 keeps everything and deletes exactly after it."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from tests.store.test_metric_aggregates import history
from tests.store.test_trace_keys import a_store_with_history, as_before_0019, chat, everything
from threadline.server.model import SessionQuery, TraceQuery
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.store import SQLiteStore

_ID = re.compile(r"'[0-9a-f]{32}'")  # a trace id, as the traced statements spell it
_STEP = re.compile(r"(?:SCAN|SEARCH) (\w+)")  # a query plan's step on a table
_TRACES = re.compile(r"\btraces\b(?:\s+(?:AS\s+)?(?!WHERE|ON|JOIN|LEFT|CROSS|SET)(\w+))?", re.I)


def _index_columns(conn: sqlite3.Connection) -> dict[str, list[str]]:
    return {
        name: [row[2] for row in conn.execute(f"PRAGMA index_info({name})")]
        for _, name, *_ in conn.execute("PRAGMA index_list(traces)")
    }


def test_the_traces_rowid_is_the_trace_key_and_no_index_is_keyed_by_the_trace_id(
    tmp_path: Path,
):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    rng = random.Random(11)
    traces = rng.sample(range(1, 10**9), 20)  # ids in no order, as real ones
    for trace in traces:
        store.write_spans(project, chat(trace, 2, f"s{trace % 4}", "plums"))
    store.write_spans(project, chat(traces[3], 4, "s0", "plums"))  # written again
    try:
        with store._read() as conn:
            columns = {row[1]: row for row in conn.execute("PRAGMA table_info(traces)")}
            # An INTEGER PRIMARY KEY: the rowid itself, no index of its own.
            assert columns["trace_key"][2] == "INTEGER" and columns["trace_key"][5] == 1
            assert [name for name, row in columns.items() if row[5]] == ["trace_key"]
            indexes = _index_columns(conn)
            assert not [n for n, cols in indexes.items() if "trace_id" in cols[:2]], indexes
            # Each row carries its trace's key; the keys grow as the traces arrived.
            rows = conn.execute(
                "SELECT t.trace_id, t.trace_key, k.key FROM traces AS t"
                " JOIN trace_keys AS k ON k.project_id = t.project_id AND k.trace_id = t.trace_id"
            ).fetchall()
            assert len(rows) == 20 and all(row[1] == row[2] for row in rows)
            by_id = {row[0]: row[1] for row in rows}
            assert [by_id[f"{t:032x}"] for t in traces] == sorted(by_id.values())
        detail = store.get_trace(project, f"{traces[3]:032x}")
        assert detail is not None and len(detail.spans) == 4
        assert detail.span_count == 4
    finally:
        store.close()


def _traced(store: SQLiteStore) -> list[str]:
    """Every statement the store runs from now on, with its values (``sqlite3`` traces
    the expanded SQL)."""
    seen: list[str] = []
    store._writer.set_trace_callback(seen.append)
    with store._read() as conn:
        conn.set_trace_callback(seen.append)
    return seen


def _plans_by_trace_id(conn: sqlite3.Connection, statements: list[str]) -> dict[str, str]:
    """How each statement that names a trace by its id reads the ``traces`` table (its
    query plan's steps on the table or its alias)."""
    plans: dict[str, str] = {}
    for sql in dict.fromkeys(statements):
        names = {"traces", *(m.group(1) for m in _TRACES.finditer(sql) if m.group(1))}
        if sql.startswith("--") or not _TRACES.search(sql) or not _ID.search(sql):
            continue
        steps = [
            row[3]
            for row in conn.execute("EXPLAIN QUERY PLAN " + sql)
            if (step := _STEP.match(row[3])) and step.group(1) in names
        ]
        if steps:
            plans[sql] = " | ".join(steps)
    return plans


def test_every_read_of_a_trace_by_its_id_goes_through_the_lookup_and_the_rowid(tmp_path: Path):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    seen = _traced(store)
    try:
        history(store, project, 5)  # late spans, retries, moved sessions, deletes
        for trace in range(101, 113):
            store.write_spans(project, chat(trace, 3, f"chat-{trace % 3}", "kiwis"))
        store.write_spans(project, chat(103, 5, "chat-0", "kiwis"))
        named = f"{104:032x}"
        store.get_trace(project, named)
        store.trace_details_json(project, [named, f"{105:032x}"])
        store.list_traces(project, TraceQuery(q="kiwis"))
        store.list_traces(project, TraceQuery(q="kiwis", sort="relevance"))
        store.list_traces(project, TraceQuery(q=named))
        store.list_traces(project, TraceQuery(q=named, sort="relevance"))
        store.list_traces(project, TraceQuery(changed_after=0))
        store.list_sessions(project, SessionQuery(q="answer107"))
        store.list_sessions(project, SessionQuery(q="kiwis", sort="relevance"))
        store.find_in_session(project, "chat-1", "kiwis")
        store.delete_traces(project, [f"{105:032x}", f"{106:032x}"])
        store.delete_sessions(project, ["chat-2"])
        store.delete_traces(project, store.expired_traces(project, 2**62, 3))
        with store._read() as conn:
            conn.set_trace_callback(None)
            plans = _plans_by_trace_id(conn, seen)
        assert len(plans) >= 8, plans  # the reads, writes and deletes above
        slow = {
            sql[:160]: plan
            for sql, plan in plans.items()
            if not all("USING INTEGER PRIMARY KEY (rowid=?)" in step for step in plan.split(" | "))
        }
        assert not slow, slow
    finally:
        store.close()


def test_a_store_at_0018_keeps_everything_and_deletes_exactly_after_0019(tmp_path: Path):
    path = tmp_path / "old.db"
    project, other, before = a_store_with_history(path)
    watermark = before["watermark"]
    as_before_0019(path)
    with sqlite3.connect(path) as conn:
        assert "sqlite_autoindex_traces_1" in _index_columns(conn)  # keyed by the id again
        keys_before = dict(conn.execute("SELECT trace_id || project_id, key FROM trace_keys"))
    conn.close()

    store = SQLiteStore(path)
    try:
        with store._read() as conn:
            assert "sqlite_autoindex_traces_1" not in _index_columns(conn)
            rows = conn.execute(
                "SELECT t.trace_key, k.key FROM traces AS t JOIN trace_keys AS k"
                " ON k.project_id = t.project_id AND k.trace_id = t.trace_id"
            ).fetchall()
            assert rows and all(row[0] == row[1] for row in rows)
            assert len(rows) == conn.execute("SELECT count(*) FROM traces").fetchone()[0]
            # The keys stay what 0018 minted (the search index's documents are made of them).
            keys = dict(conn.execute("SELECT trace_id || project_id, key FROM trace_keys"))
            assert keys == keys_before
        assert everything(store, project) == before
        # The feed goes on from where it was; a trace written again is in it.
        store.write_spans(project, chat(103, 5, "chat-0", "kiwis"))  # 2 new, 3 sent again
        changed = store.list_traces(project, TraceQuery(changed_after=watermark)).items
        assert [t.trace_id for t in changed] == [f"{103:032x}"]
        assert changed[0].span_count == 5  # a duplicate export is counted once
        # Deletes take the trace's rollup, spans, feed row and key, in its project only.
        store.delete_traces(project, [f"{105:032x}", f"{107:032x}"])
        assert store.get_trace(project, f"{105:032x}") is None
        assert store.get_trace(other, f"{105:032x}") is not None
        # Their sessions are rolled up again from the traces they keep.
        sessions = {s.session_id: s for s in store.list_sessions(project, SessionQuery()).items}
        for session_id in ("chat-0", "chat-2"):  # 105's and 107's
            assert sessions[session_id].trace_count == _trace_count(before, session_id) - 1
        with store._read() as conn:
            for table in ("traces", "spans", "trace_feed", "trace_keys"):
                left = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE project_id = ? AND trace_id IN (?, ?)",
                    (project, f"{105:032x}", f"{107:032x}"),
                ).fetchone()[0]
                assert left == 0, table
        # Retention removes what expired, as one delete.
        expired = store.expired_traces(project, 2**62, 1000)
        store.delete_traces(project, expired)
        assert store.list_traces(project, TraceQuery()).items == []
        assert store.list_sessions(project, SessionQuery()).items == []
        # A trace sent again after its deletion is new: a key of its own, counted once.
        store.write_spans(project, chat(107, 2, "chat-1", "kiwis"))
        again = store.get_trace(project, f"{107:032x}")
        assert again is not None and len(again.spans) == 2
        with store._read() as conn:
            key = conn.execute(
                "SELECT trace_key FROM traces WHERE trace_key = (SELECT key FROM trace_keys"
                " WHERE project_id = ? AND trace_id = ?)",
                (project, f"{107:032x}"),
            ).fetchone()
            assert key is not None and key[0] > max(keys_before.values())
    finally:
        store.close()


def _trace_count(before: dict[str, Any], session_id: str) -> int:
    return next(s["trace_count"] for s in before["sessions"] if s["session_id"] == session_id)
