"""Retention on the SQLite store: which traces have expired, and the space their
deletion freed given back to the file system.

Expired traces are deleted by ``deletion.delete_traces`` (the one delete path, so every
table and rollup it keeps exact stays exact); this module only finds them, oldest
first, through the ``(project_id, end_ns, ...)`` index of migration 0007.

Space: a database made since migration 0012 is created with ``auto_vacuum=INCREMENTAL``
(``INCREMENTAL`` must be chosen before the first table exists), so the pages a delete
frees can be handed back in small steps (``PRAGMA incremental_vacuum(N)``: it moves N
pages from the end of the file into free slots and shortens the file). An older
database stays in ``NONE`` mode until someone runs ``VACUUM`` once (docs/reliability.md):
its freed pages are reused by new spans, so the file stops growing, but it never shrinks.
"""

from __future__ import annotations

from threadline.server.store.sqlite.driver import sqlite3

INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


def expired_traces(
    conn: sqlite3.Connection, project_id: int, ended_before_ns: int, limit: int
) -> list[str]:
    """Up to ``limit`` traces of the project that ended before ``ended_before_ns``,
    oldest first."""
    rows = conn.execute(
        "SELECT trace_id FROM traces WHERE project_id = ? AND end_ns < ? ORDER BY end_ns LIMIT ?",
        (project_id, ended_before_ns, limit),
    ).fetchall()
    return [row[0] for row in rows]


def reclaim(conn: sqlite3.Connection, max_pages: int) -> int:
    """Give up to ``max_pages`` free pages back to the file system, in a transaction of
    their own; how many were given back (0 unless the file is ``INCREMENTAL``).

    ``executescript``: the Python module steps ``PRAGMA incremental_vacuum`` once, which
    frees one page; a script steps it to the end.
    """
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != INCREMENTAL:
        return 0
    before = conn.execute("PRAGMA freelist_count").fetchone()[0]
    if before == 0:
        return 0
    try:
        conn.executescript(f"BEGIN IMMEDIATE; PRAGMA incremental_vacuum({int(max_pages)}); COMMIT;")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return int(before - conn.execute("PRAGMA freelist_count").fetchone()[0])
