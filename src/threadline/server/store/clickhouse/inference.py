"""A project's choice to infer sessions, in ClickHouse (migration 0008): a versioned
row per change, the newest wins, like a project's allowed origins.

Inferring sessions itself is done by the SQLite store only (``store/sqlite/inference.py``):
on ClickHouse, traces without a session id stay without one. Renaming a session when an
earlier turn arrives late would need a trace rollup version that outranks one with the
same span count, which the versioning of ``store.py`` does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Rows = Callable[[str, dict[str, Any] | None], list[tuple[Any, ...]]]
Insert = Callable[[str, Sequence[Sequence[Any]], list[str]], None]
TABLE = "session_inference"


class ClickHouseSessionInference:
    def __init__(self, rows: Rows, insert: Insert) -> None:
        self._rows = rows
        self._insert = insert

    def enabled(self, project_id: int) -> bool:
        found = self._rows(
            "SELECT argMax(enabled, written_ns) FROM session_inference"
            " WHERE project_id = %(project)s GROUP BY project_id",
            {"project": project_id},
        )
        return True if not found else bool(found[0][0])

    def set_enabled(self, project_id: int, enabled: bool) -> None:
        self._insert(TABLE, [[project_id, int(enabled)]], ["project_id", "enabled"])
