"""The statements a SQLite store call reads with, and their query plans: what the tests
of which index a read takes (rather than how long it takes) look at."""

from __future__ import annotations

from collections.abc import Callable

from threadline.server.store.sqlite.store import SQLiteStore


def statement_plans(store: SQLiteStore, run: Callable[[], object]) -> dict[str, list[str]]:
    """Each statement ``run`` makes the store read with, and its plan's steps (a read
    takes the reader last given back: the one traced here)."""
    seen: list[str] = []
    store._writer.set_trace_callback(seen.append)
    with store._read() as conn:
        conn.set_trace_callback(seen.append)
    run()
    store._writer.set_trace_callback(None)
    with store._read() as conn:
        conn.set_trace_callback(None)
        return {
            sql: [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
            for sql in dict.fromkeys(seen)
            if sql.lstrip().upper().startswith(("SELECT", "WITH"))
        }
