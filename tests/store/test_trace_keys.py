"""Each trace's integer key in the SQLite store (migration 0018): the per-trace B-trees
ingest adds to are keyed by it, keys grow as traces arrive, and a store written before
0018 keeps its rows, rollups, search index and feed, and deletes exactly after it."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from tests.store.test_contract import record
from tests.store.test_metric_aggregates import history
from threadline.server.model import SessionQuery, TraceQuery
from threadline.server.store import migrations
from threadline.server.store.sqlite import rows as schema
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.store import SQLiteStore

_SQLITE = "threadline.server.store.sqlite"


def _columns(conn: sqlite3.Connection, index: str) -> list[str]:
    return [row[2] for row in conn.execute(f"PRAGMA index_info({index})")]


def chat(trace: int, spans: int, session: str, word: str) -> list[Any]:
    return [
        record(
            trace,
            trace * 100 + i,
            trace * 100 if i else None,
            start=trace * 50 + i,
            session=session,
            user=f"u{trace % 3}",
            tokens=(i + 1, 2),
            cost=0.001 * (i + 1),
            model="gpt",
            input=f"question {trace} about {word}",
            output=f"answer{trace} " + "x" * 300,
        )
        for i in range(spans)
    ]


def test_the_per_trace_indexes_are_keyed_by_a_key_that_grows(tmp_path: Path):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    rng = random.Random(7)
    traces = rng.sample(range(1, 10**9), 30)  # ids in no order, as real ones
    for trace in traces:
        store.write_spans(project, chat(trace, 3, "s", "kiwis"))
    # A retry of a trace seen before keeps its key.
    store.write_spans(project, chat(traces[0], 4, "s", "kiwis"))
    with store._read() as conn:
        assert _columns(conn, "spans_identity") == ["trace_key", "span_id"]
        assert _columns(conn, "trace_feed_identity") == ["trace_key"]
        assert _columns(conn, "trace_keys_identity") == ["project_id", "trace_id"]
        keys = dict(conn.execute("SELECT trace_id, key FROM trace_keys"))
        # Minted in arrival order, whatever the ids.
        assert [keys[f"{t:032x}"] for t in traces] == sorted(keys.values())
        assert len(keys) == 30
        # Spans by trace are found through the one lookup, then the key.
        plan = " ".join(
            row[3]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN " + schema.SELECT_SPAN_FACTS.format("?"), (project, "x")
            )
        )
        assert "spans USING INDEX spans_identity (trace_key=?)" in plan, plan
        assert "trace_keys_identity" in plan, plan
        counted = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
        assert counted == 30 * 3 + 1  # the retry's one new span, its others counted once
    store.close()


def statement(version: int, pattern: str) -> str:
    """The first statement of migration ``version`` that ``pattern`` matches, as written
    there (to take a current database back to an older shape)."""
    found = re.search(pattern, dict(migrations.scripts(_SQLITE))[version], re.DOTALL)
    assert found, pattern
    return found.group(0) + "\n"


_TRACE_COLUMNS = (
    "project_id, trace_id, session_id, user_id, name, start_ns, end_ns, span_count,"
    " error_count, input_tokens, output_tokens, total_tokens, cost_usd, status, tags, metadata,"
    " input_preview, output_preview, context_use, model_usage"
)


def as_before_0019(path: Path) -> None:
    """Take a current database back to the shape 0019 found: the traces' rollups keyed
    by (project, trace id), with 0017's and 0018's triggers."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        "BEGIN;\n"
        "DROP TRIGGER trace_feed_on_write;\n"
        "DROP TRIGGER metric_trace_and_usage_after_delete;\n"
        "ALTER TABLE traces RENAME TO traces_by_key;\n"
        + statement(1, r"CREATE TABLE traces \(.*?\);")
        + "ALTER TABLE traces ADD COLUMN context_use REAL;\n"
        "ALTER TABLE traces ADD COLUMN model_usage TEXT;\n"
        f"INSERT INTO traces ({_TRACE_COLUMNS}) SELECT {_TRACE_COLUMNS} FROM traces_by_key"
        " ORDER BY start_ns;\n"
        "DROP TABLE traces_by_key;\n"
        + statement(1, r"CREATE INDEX traces_by_start .*?;")
        + statement(1, r"CREATE INDEX traces_by_session .*?;")
        + statement(1, r"CREATE INDEX traces_by_user .*?;")
        + statement(7, r"CREATE INDEX traces_for_metrics .*?;")
        + statement(17, r"CREATE TRIGGER metric_trace_and_usage_after_delete .*?\nEND;")
        + statement(18, r"CREATE TRIGGER trace_feed_on_write .*?\nEND;")
        + "DELETE FROM schema_migrations WHERE version = 19;\n"
        "COMMIT;"
    )
    conn.close()


def _as_before_0018(path: Path) -> None:
    """Take a current database back to the shape 0018 found: spans and the feed keyed by
    (project, trace id), the search index's keys in search_traces, 0002's feed trigger."""
    as_before_0019(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        "BEGIN;\n"
        "DROP TRIGGER trace_feed_on_write;\n"
        + statement(2, r"CREATE TRIGGER trace_feed_on_write .*?\nEND;")
        + "DROP INDEX trace_feed_identity;\n"
        "ALTER TABLE trace_feed DROP COLUMN trace_key;\n"
        + statement(2, r"CREATE UNIQUE INDEX trace_feed_identity .*?;")
        + "DROP INDEX spans_identity;\n"
        "ALTER TABLE spans DROP COLUMN trace_key;\n"
        + statement(1, r"CREATE UNIQUE INDEX spans_identity .*?;")
        + statement(9, r"CREATE TABLE search_traces \(.*?\);")
        + statement(9, r"CREATE UNIQUE INDEX search_traces_identity .*?;")
        # Only traces with searchable text had a key.
        + "INSERT INTO search_traces SELECT key, project_id, trace_id, numbered FROM trace_keys"
        " WHERE numbered > 0;\n"
        "DROP TABLE trace_keys;\n"
        "DELETE FROM schema_migrations WHERE version = 18;\n"
        "COMMIT;"
    )
    conn.close()


def everything(store: SQLiteStore, project: int) -> dict[str, Any]:
    """What the lists, details, search and feed say of the project."""
    traces = store.list_traces(project, TraceQuery(limit=500)).items
    return {
        "traces": [t.model_dump() for t in traces],
        "details": [store.get_trace(project, t.trace_id) for t in traces],
        "sessions": [s.model_dump() for s in store.list_sessions(project, SessionQuery()).items],
        "kiwis": sorted(
            t.trace_id for t in store.list_traces(project, TraceQuery(q="kiwis")).items
        ),
        "answer107": sorted(
            s.session_id for s in store.list_sessions(project, SessionQuery(q="answer107")).items
        ),
        "in session": [m.model_dump() for m in store.find_in_session(project, "chat-1", "kiwis")],
        "watermark": store.live_watermark(project),
    }


def a_store_with_history(path: Path) -> tuple[int, int, dict[str, Any]]:
    """A closed store at ``path`` with two projects, the first with late spans, retries,
    moved sessions and deletes, and chats that share a trace id with the second; the
    first project's ``everything`` as it reads."""
    store = SQLiteStore(path)
    project = store.create_project("p").id
    other = store.create_project("q").id
    history(store, project, 3)  # late spans, retries, moved sessions, deletes
    for trace in range(101, 113):
        store.write_spans(project, chat(trace, 3, f"chat-{trace % 3}", "kiwis"))
    store.write_spans(other, chat(105, 2, "chat-1", "kiwis"))  # the same id elsewhere
    store.delete_traces(project, [f"{112:032x}"])
    before = everything(store, project)
    assert before["kiwis"] and before["answer107"] and before["in session"]
    store.close()
    return project, other, before


def test_a_store_from_before_0018_keeps_everything_and_deletes_exactly(tmp_path: Path):
    path = tmp_path / "old.db"
    project, other, before = a_store_with_history(path)
    watermark = before["watermark"]
    _as_before_0018(path)

    store = SQLiteStore(path)
    try:
        with store._read() as conn:
            assert _columns(conn, "spans_identity") == ["trace_key", "span_id"]
            unkeyed = conn.execute("SELECT count(*) FROM spans WHERE trace_key IS NULL")
            assert unkeyed.fetchone()[0] == 0
            # Every trace has one key, each stored trace's spans carry it.
            spans_keys = conn.execute(
                "SELECT count(*) FROM spans AS s JOIN trace_keys AS k ON k.key = s.trace_key"
                " WHERE k.project_id = s.project_id AND k.trace_id = s.trace_id"
            ).fetchone()[0]
            assert spans_keys == conn.execute("SELECT count(*) FROM spans").fetchone()[0]
            assert (
                conn.execute("SELECT count(*) FROM trace_keys").fetchone()[0]
                == (conn.execute("SELECT count(*) FROM traces").fetchone()[0])
            )
        assert everything(store, project) == before
        # The feed goes on from where it was; a trace written again is in it.
        store.write_spans(project, chat(103, 5, "chat-0", "kiwis"))  # 2 new, 3 sent again
        changed = store.list_traces(project, TraceQuery(changed_after=watermark)).items
        assert [t.trace_id for t in changed] == [f"{103:032x}"]
        assert changed[0].span_count == 5  # a duplicate export is counted once
        # Deletes take the trace's spans, words, feed row and key, in its project only.
        store.delete_traces(project, [f"{105:032x}", f"{107:032x}"])
        assert store.get_trace(project, f"{105:032x}") is None
        assert store.get_trace(other, f"{105:032x}") is not None
        found = store.list_traces(project, TraceQuery(q="kiwis")).items
        assert f"{105:032x}" not in {t.trace_id for t in found}
        assert {t.trace_id for t in store.list_traces(other, TraceQuery(q="kiwis")).items} == {
            f"{105:032x}"
        }
        with store._read() as conn:
            conn.execute(
                "INSERT INTO search_text (search_text, rank) VALUES ('integrity-check', 0)"
            )
            for table in ("spans", "trace_feed", "trace_keys"):
                left = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE project_id = ? AND trace_id IN (?, ?)",
                    (project, f"{105:032x}", f"{107:032x}"),
                ).fetchone()[0]
                assert left == 0, table
        # A trace sent again after its deletion is new: a key of its own, counted once.
        store.write_spans(project, chat(107, 2, "chat-1", "kiwis"))
        again = store.get_trace(project, f"{107:032x}")
        assert again is not None and len(again.spans) == 2
    finally:
        store.close()
