"""How often FTS5 merges the search index's segments, set when the store opens.

Each write transaction's words become a new segment of ``search_text`` at its commit,
and FTS5 merges segments as they pile up: with ``automerge`` N it merges a level's
segments once N of them exist there. Each merge rewrites every word of the segments it
takes, so a word is written again once per level it climbs: about log_N of the
transactions so far. With FTS5's default of 4, on real chats at 200,000 spans, the
commit cost 29-32 µs a span of the index's 54-58 in the writer's transaction, against
19-22 at 8 (benchmarks.md, "Merging the search index less often").
The price is more segments for a query to read (at most 7 a level instead of 3): a few
hundredths of a millisecond in FTS5, against query budgets of tens of milliseconds.

Not 16, which saved a few µs a span more: FTS5 takes a level whose documents are mostly
deleted (``deletemerge``, migration 0016) only when no level has ``automerge`` segments
to merge, and with 16 a store whose traces retention deleted in order kept half of the
index's bytes (tests/store/test_search_contentless_delete.py).

FTS5 keeps the setting in the table's own config (``search_text_config``), so it is
written only when it differs: a store made before this, or whose index migration 0016
made anew, takes it when it next opens.
"""

from __future__ import annotations

from threadline.server.store.sqlite.driver import sqlite3

AUTOMERGE = 8


def set_merging(conn: sqlite3.Connection) -> None:
    """Give ``search_text`` this module's ``automerge`` if it has another (one write, in
    its own transaction: call it outside any other)."""
    row = conn.execute("SELECT v FROM search_text_config WHERE k = 'automerge'").fetchone()
    if row is not None and row[0] == AUTOMERGE:
        return
    conn.execute(
        "INSERT INTO search_text (search_text, rank) VALUES ('automerge', ?)", (AUTOMERGE,)
    )
