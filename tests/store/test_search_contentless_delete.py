"""The search index made again with FTS5's contentless_delete (migration 0016): a store
indexed by an engine older than 3.43 keeps its index and deletes with the text, is
indexed again when a newer engine opens it, and then deletes by rowid with the same
answers; an older engine refuses a store a newer one migrated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from threadline.server.model import SessionQuery, TraceQuery
from threadline.server.store.sqlite import SQLiteStore, driver
from threadline.server.store.sqlite.driver import sqlite3

_ROOT = Path(__file__).resolve().parents[2]

needs_a_current_engine = pytest.mark.skipif(
    not driver.supports(3, 43), reason="the linked SQLite is older than 3.43"
)

# Written by the standard library's engine in a process of its own: 30 spans of 3
# sessions, one trace deleted there (the old engine's delete, with the text).
_OLD_STORE = """
import json, sys
from tests.store.test_search_sqlite import _spans
from threadline.server.store.sqlite import SQLiteStore, driver
assert driver.MODULE == "sqlite3", driver.describe()
store = SQLiteStore(sys.argv[1])
project = store.create_project("p").id
store.write_spans(project, _spans(30))
store.delete_traces(project, [f"{5:032x}"])
store.close()
print(json.dumps({"project": project, "supports": driver.supports(3, 43)}))
"""


def _run_on_stdlib(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, THREADLINE_SQLITE="stdlib")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _schema(path: Path) -> tuple[set[int], str, dict[str, int]]:
    """Applied migrations, the index's CREATE statement, and trace id -> its key."""
    conn = sqlite3.connect(path)
    try:
        applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        (made,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'search_text'"
        ).fetchone()
        keys = dict(conn.execute("SELECT trace_id, key FROM trace_keys"))
        return applied, made, keys
    finally:
        conn.close()


def _sessions(store: SQLiteStore, project: int, q: str) -> list[str]:
    found = store.list_sessions(project, SessionQuery(q=q))
    return sorted(s.session_id for s in found.items)


def _traces(store: SQLiteStore, project: int, q: str) -> list[str]:
    found = store.list_traces(project, TraceQuery(q=q))
    return sorted(t.trace_id for t in found.items)


@needs_a_current_engine
def test_a_store_indexed_by_an_older_engine_is_indexed_again_and_deletes_by_rowid(
    tmp_path: Path,
):
    path = tmp_path / "old.db"
    made = _run_on_stdlib(_OLD_STORE, str(path))
    assert made.returncode == 0, made.stderr
    written = json.loads(made.stdout)
    if written["supports"]:
        pytest.skip("the standard library's SQLite is 3.43 or newer: 0016 applies there too")
    project = written["project"]
    applied, index_sql, keys_before = _schema(path)
    assert 16 not in applied and 15 in applied
    assert "contentless_delete" not in index_sql

    store = SQLiteStore(path)
    try:
        applied, index_sql, keys_after = _schema(path)
        assert 16 in applied and "contentless_delete" in index_sql
        # The traces keep their keys: relevance's newest-first order is arrival order.
        assert keys_after == keys_before
        # Every answer as before the migration: a word of every span, a word of one, a
        # phrase, a prefix, a deleted trace's word, search inside a session.
        assert _sessions(store, project, "kumquats") == ["s0", "s1", "s2"]
        assert _sessions(store, project, "answer7") == ["s1"]
        assert _sessions(store, project, '"question 8 about"') == ["s2"]
        assert _traces(store, project, "answer1*") == [f"{i:032x}" for i in (1, *range(10, 20))]
        assert _traces(store, project, "answer5") == []
        assert len(store.find_in_session(project, "s1", "kumquats")) == 10

        # Deleting by rowid: a session and a trace go, nothing else does.
        store.delete_sessions(project, ["s1"])
        store.delete_traces(project, [f"{2:032x}"])
        assert _sessions(store, project, "kumquats") == ["s0", "s2"]
        assert _sessions(store, project, "answer7") == []
        assert _traces(store, project, "answer2") == []
        assert _traces(store, project, "answer3") == [f"{3:032x}"]
        # New spans are indexed, and found, after it.
        store.write_spans(project, _more_spans())
        assert _sessions(store, project, "persimmons") == ["s9"]
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        conn.execute("INSERT INTO search_text (search_text, rank) VALUES ('integrity-check', 0)")
        left = conn.execute("SELECT count(*) FROM search_docs").fetchone()[0]
        # 30 spans, less one trace, a session of 10, one more trace; plus the new one.
        assert left == 30 - 1 - 10 - 1 + 1
    finally:
        conn.close()


def _more_spans() -> list:
    from tests.store.test_contract import record

    return [
        record(
            100,
            100,
            session="s9",
            input=json.dumps([{"role": "user", "content": "and persimmons?"}]),
        )
    ]


@needs_a_current_engine
def test_an_older_engine_refuses_a_store_a_newer_one_migrated(tmp_path: Path):
    path = tmp_path / "new.db"
    SQLiteStore(path).close()
    opened = _run_on_stdlib(
        """
        import sys
        from threadline.server.store.sqlite import SQLiteStore, driver
        if driver.supports(3, 43):
            print("current")
            sys.exit(0)
        SQLiteStore(sys.argv[1])
        """,
        str(path),
    )
    if opened.stdout.strip() == "current":
        pytest.skip("the standard library's SQLite is 3.43 or newer")
    assert opened.returncode != 0
    assert "needs SQLite 3.43 or newer" in opened.stderr, opened.stderr[-2000:]


@needs_a_current_engine
def test_deleting_every_trace_in_order_gives_the_index_space_back(tmp_path: Path):
    from tests.store.test_search_sqlite import _spans

    path = tmp_path / "t.db"
    store = SQLiteStore(path)
    try:
        project = store.create_project("p").id
        spans = _spans(400)
        for start in range(0, 400, 10):  # a transaction, and a segment, each
            store.write_spans(project, spans[start : start + 10])

        def index_bytes() -> int:
            with store._read() as conn:
                return conn.execute("SELECT sum(length(block)) FROM search_text_data").fetchone()[0]

        full = index_bytes()
        ids = [f"{i:032x}" for i in range(1, 401)]
        for start in range(0, 400, 20):  # oldest first, as retention deletes
            store.delete_traces(project, ids[start : start + 20])
        # The segments emptied are written anew without the deleted documents
        # ('deletemerge'), not kept whole beside their tombstones.
        assert index_bytes() < full / 5
        assert _sessions(store, project, "kumquats") == []
    finally:
        store.close()
