"""A project's choice to infer sessions, in ClickHouse (migration 0008): a versioned
row per change, the newest wins, like a project's allowed origins. Also what the
inferred sessions themselves read and write (migration 0012): the response ids' sessions
(``inferred_sessions.py`` decides them).

The setting is read by each server's writer, at most once per ``SETTING_SECONDS``
per project (an export with signals needs it), and is given with each export's job
(``known``, never a read: the job is made on the event loop) so that the worker makes
the rows, its sessions named or not as the setting says (``export_rows.RowsPreparer``).
Where it is not known (a start, a lull), the pipeline reads it off the event loop before
making the job (``recently_enabled``, through ``span_preparer(project_id, read=True)``).
The writer reads it again once it is half that old, while the project's exports carry
signals, so that a busy project's jobs find it known without that read. How stale it
may be: an export follows the setting as read at most ``SETTING_SECONDS`` before it
arrived, so a change made on another server (or by the CLI) applies to exports
arriving there within that time; one made on this server, to the exports that arrive
after it (those in hand follow the setting they arrived under).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from time import monotonic
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
        # Each project's setting and when it was last known to hold (monotonic).
        self._known: dict[int, tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def enabled(self, project_id: int) -> bool:
        asked = monotonic()
        found = self._rows(
            "SELECT argMax(enabled, written_ns) FROM session_inference"
            " WHERE project_id = %(project)s GROUP BY project_id",
            {"project": project_id},
        )
        on = True if not found else bool(found[0][0])
        self._remember(project_id, on, asked)
        return on

    def set_enabled(self, project_id: int, enabled: bool) -> None:
        self._insert(TABLE, [[project_id, int(enabled)]], ["project_id", "enabled"])
        self._remember(project_id, enabled, monotonic())

    def _remember(self, project_id: int, enabled: bool, since: float) -> None:
        """Keep what held latest: a read that began before a change made here (the
        writer's, beside the API's) must not put the old setting back."""
        with self._lock:
            known = self._known.get(project_id)
            if known is None or known[1] <= since:
                self._known[project_id] = (enabled, since)

    def recently_enabled(self, project_id: int) -> bool:
        """The setting as read within ``SETTING_SECONDS`` (by the writer, per export)."""
        known = self.known(project_id)
        return self.enabled(project_id) if known is None else known

    def known(self, project_id: int) -> bool | None:
        """The setting as read within ``SETTING_SECONDS``, else None; never reads."""
        known = self._known.get(project_id)
        if known is not None and monotonic() - known[1] < SETTING_SECONDS:
            return known[0]
        return None

    def keep_known(self, project_id: int) -> None:
        """Read the setting again once half of ``SETTING_SECONDS`` old (by the writer,
        for a project whose exports carry signals), so that ``known`` still has it when
        the next jobs are made."""
        known = self._known.get(project_id)
        if known is None or monotonic() - known[1] >= SETTING_SECONDS / 2:
            self.enabled(project_id)

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

    def write_responses(self, rows: list[list[object]]) -> None:
        """Store the sessions of response ids (``Placement.responses``)."""
        self._insert(inferred_sessions.RESPONSES_TABLE, rows, inferred_sessions.RESPONSES_COLUMNS)
