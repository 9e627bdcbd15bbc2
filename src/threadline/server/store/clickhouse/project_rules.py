"""A project's data rules in ClickHouse (migration 0009): its own retention days and
its redaction rules, each a row replaced as a whole (the newest ``written_ns`` wins,
read with ``argMax``, as for a project's allowed origins); and which traces retention
deletes next."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from threadline.server.redaction.rules import RedactionRules

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]
Insert = Callable[[str, list[list[Any]], list[str]], None]

TABLES = ("project_retention", "redaction_rules")


class ClickHouseProjectRules:
    def __init__(self, rows: Rows, insert: Insert) -> None:
        self._rows = rows
        self._insert = insert

    def retention_overrides(self) -> dict[int, int]:
        found = self._rows(
            # In a tuple: argMax skips NULLs, and a NULL (back to the server's) must win.
            "SELECT project_id, tupleElement(argMax(tuple(days), written_ns), 1) AS newest"
            " FROM project_retention GROUP BY project_id HAVING newest IS NOT NULL",
            {},
        )
        return {int(row[0]): int(row[1]) for row in found}

    def set_retention_days(self, project_id: int, days: int | None) -> None:
        self._insert("project_retention", [[project_id, days]], ["project_id", "days"])

    def redaction_rules(self, project_id: int) -> RedactionRules:
        found = self._rows(
            "SELECT argMax(rules, written_ns) FROM redaction_rules"
            " WHERE project_id = %(project)s GROUP BY project_id",
            {"project": project_id},
        )
        return RedactionRules.from_json(found[0][0] if found else "")

    def set_redaction_rules(self, project_id: int, rules: RedactionRules) -> None:
        self._insert("redaction_rules", [[project_id, rules.to_json()]], ["project_id", "rules"])

    def expired_traces(self, project_id: int, ended_before_ns: int, limit: int) -> list[str]:
        # A trace's parts merge by max(end_ns): its latest end decides.
        found = self._rows(
            "SELECT trace_id FROM trace_parts_by_id WHERE project_id = %(project)s"
            " GROUP BY trace_id"
            " HAVING max(end_ns) < %(before)s ORDER BY max(end_ns) LIMIT %(limit)s",
            {"project": project_id, "before": ended_before_ns, "limit": limit},
        )
        return [row[0] for row in found]
