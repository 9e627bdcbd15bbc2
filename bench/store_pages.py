"""How large each table and index of a SQLite store is, against the writer's page cache.

    python bench/store_pages.py /work/bench-data/growth5m/threadline.db

Reads the store (read-only) through the standard library's module, whose SQLite has
the ``dbstat`` table (the bundled wheel's has not), and prints each B-tree's pages and
MB, largest first, with how its keys arrive on insert, so that a growth run's rise in
page-cache misses (``bench/server_growth.py``'s preads a span) can be put down to the
B-trees written at random places that outgrew the writer's cache (``cache_size``,
16 MiB). Walks every page of the file once: ~1 minute for a few GB. A benchmark aid,
not a test.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

# Where a B-tree's inserts land, for the ones ingest writes per span or trace: at its
# end (keys that grow: rowids, times), or anywhere (random trace ids, values).
_INSERTED_AT = {
    "spans": "end (rowid)",
    "spans_identity": "anywhere (trace id)",
    "traces": "end (rowid)",
    "sqlite_autoindex_traces_1": "anywhere (trace id)",
    "search_traces_identity": "anywhere (trace id)",
    "search_docs": "end (key)",
    "search_traces": "end (key)",
    "search_text_data": "end (segments), merged",
    "trace_feed": "end (seq)",
    "trace_feed_identity": "anywhere (trace id)",
    "trace_feed_by_seq": "end (seq)",
}
# A store since migration 0018: one increasing key per trace (store/sqlite/trace_keys.py).
_KEYED_BY_TRACE_KEY = {
    "spans_identity": "end (trace key)",
    "trace_feed_identity": "end (trace key)",
    "trace_keys": "end (key)",
    "trace_keys_identity": "anywhere (trace id)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    conn = sqlite3.connect(f"file:{args.database}?mode=ro", uri=True)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    rows = conn.execute(
        "SELECT name, COUNT(*) FROM dbstat GROUP BY name ORDER BY COUNT(*) DESC"
    ).fetchall()
    total = sum(pages for _, pages in rows)
    inserted_at = dict(_INSERTED_AT)
    if any(name == "trace_keys" for name, _ in rows):
        inserted_at.update(_KEYED_BY_TRACE_KEY)
    print(f"{'B-tree':42s} {'pages':>10} {'MB':>9} {'share':>6}  inserts land")
    for name, pages in rows[: args.top]:
        print(
            f"{name:42s} {pages:>10,} {pages * page_size / 1e6:>9,.0f}"
            f" {pages / total:>6.1%}  {inserted_at.get(name, '')}"
        )
    print(f"{'all':42s} {total:>10,} {total * page_size / 1e6:>9,.0f}")


if __name__ == "__main__":
    main()
