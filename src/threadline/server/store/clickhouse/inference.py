"""A project's choice to infer sessions, in ClickHouse (migration 0008): a versioned
row per change, the newest wins, like a project's allowed origins. Also what the
inferred sessions themselves read and write (migration 0012): the response ids' sessions
(``inferred_sessions.py`` decides them).

The setting is read once per ``SETTING_SECONDS`` per project by each server's writer
(an export with signals needs it), so a change made on another server applies to
exports written there within that time; on this server, at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from threadline.server.store.clickhouse import inferred_sessions

Rows = Callable[[str, dict[str, Any] | None], list[tuple[Any, ...]]]
Insert = Callable[[str, Sequence[Sequence[Any]], list[str]], None]
TABLE = "session_inference"
SETTING_SECONDS = 5.0


class ClickHouseSessionInference:
    def __init__(self, rows: Rows, insert: Insert) -> None:
        self._rows = rows
        self._insert = insert
        self._known: dict[int, tuple[bool, float]] = {}

    def enabled(self, project_id: int) -> bool:
        found = self._rows(
            "SELECT argMax(enabled, written_ns) FROM session_inference"
            " WHERE project_id = %(project)s GROUP BY project_id",
            {"project": project_id},
        )
        on = True if not found else bool(found[0][0])
        self._known[project_id] = (on, time.monotonic())
        return on

    def set_enabled(self, project_id: int, enabled: bool) -> None:
        self._insert(TABLE, [[project_id, int(enabled)]], ["project_id", "enabled"])
        self._known[project_id] = (enabled, time.monotonic())

    def recently_enabled(self, project_id: int) -> bool:
        """The setting as read within ``SETTING_SECONDS`` (by the writer, per export)."""
        known = self._known.get(project_id)
        if known is not None and time.monotonic() - known[1] < SETTING_SECONDS:
            return known[0]
        return self.enabled(project_id)

    def look_up_responses(self, project_id: int, keys: list[str]) -> dict[str, str]:
        """The session stored for each of the response ``keys`` that has one (the least,
        should two servers have named it differently)."""
        return dict(
            self._rows(
                "SELECT response_key, min(session_id) FROM response_sessions"
                " WHERE project_id = %(project)s AND response_key IN %(keys)s"
                " GROUP BY response_key",
                {"project": project_id, "keys": keys},
            )
        )

    def write(self, placement: inferred_sessions.Placement) -> None:
        self._insert(
            inferred_sessions.RESPONSES_TABLE,
            placement.responses,
            inferred_sessions.RESPONSES_COLUMNS,
        )
