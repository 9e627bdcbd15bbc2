"""Statements over a list of ids too long for one statement, run in chunks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from threadline.server.store.sqlite.driver import sqlite3

# SQLite allows 32766 bound variables; batches of ids stay well under it.
IN_CHUNK = 500


def select_in(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any], ids: Sequence[Any]
) -> Iterator[tuple[Any, ...]]:
    """Run ``sql`` (``params`` first, then one ``{}`` for the IN list) over ``ids`` in
    chunks, since SQLite bounds the number of parameters of a statement."""
    for i in range(0, len(ids), IN_CHUNK):
        chunk = ids[i : i + IN_CHUNK]
        yield from conn.execute(sql.format(", ".join("?" * len(chunk))), (*params, *chunk))


def execute_in(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any], ids: Sequence[Any]
) -> int:
    """Run ``sql`` as ``select_in`` does; returns the rows it changed."""
    changed = 0
    for i in range(0, len(ids), IN_CHUNK):
        chunk = ids[i : i + IN_CHUNK]
        cursor = conn.execute(sql.format(", ".join("?" * len(chunk))), (*params, *chunk))
        changed += cursor.rowcount
    return changed
