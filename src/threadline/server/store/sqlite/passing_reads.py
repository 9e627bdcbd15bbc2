"""Reads that pass through much of the file once (the bulk export's spans), kept from
filling the connection's page cache.

A reader connection keeps up to 16 MiB of pages (database.py) for the pages the lists
read again and again. An export of a million spans reads a gigabyte once: it would fill
that cache on every connection it happens to take (a second one is opened whenever
another read holds the first), and the server's memory would grow by 16 MiB each time
(docs/benchmarks.md, export). While such a read runs its connection keeps
``PASSING_CACHE_KIB``, enough for the inner pages of the tables it walks; shrinking the
limit frees the pages beyond it, and the limit is given back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadline.server.store.sqlite.driver import sqlite3

PASSING_CACHE_KIB = 2048


@contextmanager
def small_page_cache(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    (kept,) = conn.execute("PRAGMA cache_size").fetchone()
    conn.execute(f"PRAGMA cache_size=-{PASSING_CACHE_KIB}")
    try:
        yield conn
    finally:
        conn.execute(f"PRAGMA cache_size={int(kept)}")
