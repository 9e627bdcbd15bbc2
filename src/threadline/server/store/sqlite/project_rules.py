"""A project's data rules on the SQLite store: its own retention days and its
redaction rules, columns of ``projects`` (migration 0012)."""

from __future__ import annotations

from threadline.server.redaction.rules import RedactionRules
from threadline.server.store.sqlite.driver import sqlite3


def retention_overrides(conn: sqlite3.Connection) -> dict[int, int]:
    """Projects' own retention days, for those that have one."""
    rows = conn.execute(
        "SELECT id, retention_days FROM projects WHERE retention_days IS NOT NULL"
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def set_retention_days(conn: sqlite3.Connection, project_id: int, days: int | None) -> None:
    conn.execute("UPDATE projects SET retention_days = ? WHERE id = ?", (days, project_id))


def redaction_rules(conn: sqlite3.Connection, project_id: int) -> RedactionRules:
    row = conn.execute("SELECT redaction FROM projects WHERE id = ?", (project_id,)).fetchone()
    return RedactionRules.from_json(row[0] if row else "")


def set_redaction_rules(conn: sqlite3.Connection, project_id: int, rules: RedactionRules) -> None:
    conn.execute("UPDATE projects SET redaction = ? WHERE id = ?", (rules.to_json(), project_id))
