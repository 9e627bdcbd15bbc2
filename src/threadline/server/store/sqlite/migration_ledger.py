"""Which numbered migrations a SQLite database holds: its ``schema_migrations`` table.

The table has a row per applied version, written in the transaction that applies it.
Databases made before it recorded only ``PRAGMA user_version``, the highest version
applied, which is not the same thing: migrations were merged out of number order
(0011 before 0009, 0012 before 0010), so a database made in between holds 0011 and
lacks 0009. For such a database the ledger is filled once, when it is made: a version
at or below ``user_version`` counts as applied when an object its script creates
(table, index, trigger, view, added column) is in the schema, or when it creates none.
A script runs in one transaction, so one object present means all of it was applied.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from threadline.server.store.sqlite.driver import sqlite3

_TABLE = "schema_migrations"
_CREATED = re.compile(
    r"\bCREATE\s+(?:UNIQUE\s+|VIRTUAL\s+|TEMP\s+)*(?:TABLE|INDEX|TRIGGER|VIEW)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?(\w+)",
    re.IGNORECASE,
)
_ADDED_COLUMN = re.compile(r"\bALTER\s+TABLE\s+(\w+)\s+ADD\s+(?:COLUMN\s+)?(\w+)", re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*")


def applied(conn: sqlite3.Connection, scripts: Sequence[tuple[int, str]]) -> set[int]:
    """The versions applied to the database on ``conn`` (the ledger is made, and for an
    older database filled from its schema, if it is missing)."""
    if not _has_ledger(conn):
        highest = conn.execute("PRAGMA user_version").fetchone()[0]
        held = [version for version, text in scripts if version <= highest and _holds(conn, text)]
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE}"
                " (version INTEGER PRIMARY KEY, applied_ns INTEGER NOT NULL)"
            )
            conn.executemany(
                f"INSERT OR IGNORE INTO {_TABLE} (version, applied_ns) VALUES (?, 0)",
                [(version,) for version in held],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return {version for (version,) in conn.execute(f"SELECT version FROM {_TABLE}")}


def recorded(version: int, highest: int) -> str:
    """The statements that record ``version`` as applied, to run in its transaction
    (``user_version`` is kept at the highest applied, for tools that read it)."""
    return (
        f"INSERT INTO {_TABLE} (version, applied_ns) VALUES ({int(version)}, {time.time_ns()});\n"
        f"PRAGMA user_version = {int(highest)};"
    )


def _has_ledger(conn: sqlite3.Connection) -> bool:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_TABLE,))
    return found.fetchone() is not None


def _holds(conn: sqlite3.Connection, script: str) -> bool:
    """Whether what ``script`` creates is in the schema (true of a script creating
    nothing, such as one that only fills a table)."""
    text = _COMMENT.sub("", script)
    objects = _CREATED.findall(text)
    columns = _ADDED_COLUMN.findall(text)
    if not objects and not columns:
        return True
    names = {name.lower() for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    if any(name.lower() in names for name in objects):
        return True
    return any(
        conn.execute(
            "SELECT 1 FROM pragma_table_info(?) WHERE name = ? COLLATE NOCASE", (table, column)
        ).fetchone()
        is not None
        for table, column in columns
    )
