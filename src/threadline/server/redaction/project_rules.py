"""Each project's redaction rules as the ingest path reads them: from the store, kept
for ``FRESH_S`` so that an export does not cost a read (on ClickHouse, a round trip).

A change made through this process (API, CLI against a running server's store) is
seen by its next export (``forget``); one made through another worker or server within
``FRESH_S``. docs/configuration.md says so.
"""

from __future__ import annotations

import threading
import time

from threadline.server.redaction.rules import RedactionRules
from threadline.server.store import Store

FRESH_S = 2.0


class ProjectRules:
    def __init__(self, store: Store, fresh_s: float = FRESH_S) -> None:
        self._store = store
        self._fresh_s = fresh_s
        self._lock = threading.Lock()
        self._known: dict[int, tuple[float, RedactionRules]] = {}

    def cached(self, project_id: int) -> RedactionRules | None:
        """The rules if a fresh copy is in hand, else None: never reads the store, so the
        event loop can ask without sending the question to a thread."""
        with self._lock:
            known = self._known.get(project_id)
        if known is not None and time.monotonic() - known[0] < self._fresh_s:
            return known[1]
        return None

    def get(self, project_id: int) -> RedactionRules:
        rules = self.cached(project_id)
        if rules is not None:
            return rules
        now = time.monotonic()
        rules = self._store.redaction_rules(project_id)
        with self._lock:
            self._known[project_id] = (now, rules)
        return rules

    def forget(self, project_id: int) -> None:
        with self._lock:
            self._known.pop(project_id, None)
