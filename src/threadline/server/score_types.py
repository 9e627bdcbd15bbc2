"""The type each project's score names were written with, as the lists' score columns
show them (``web/score_columns.py``), kept by each server process; the routes that
delete scores or change score configurations, in the JSON API and the UI, forget it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from starlette.datastructures import State


class WrittenTypes:
    """The type each project's score names were written with, as read from one of their
    scores, kept a while: a ClickHouse read costs a list page some 20 ms a name
    (docs/benchmarks.md), and a name keeps its type in practice.

    It can change: a name's scores deleted and written again with another type (or,
    unconfigured, simply written with another). A score deleted or a configuration
    changed through this process forgets the project's types at once (``forget``: a
    delete does not say which name it was, and deletes are rare); any other change
    (another server's, a retention sweep, a write of another type) shows once the
    type is ``max_age`` seconds old, as each process rereads it then: one read a
    name a minute at most. At most ``limit`` names are kept."""

    def __init__(
        self,
        limit: int = 10_000,
        max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._max_age = max_age
        self._clock = clock
        self._known: dict[tuple[int, str], tuple[str, float]] = {}  # -> (type, read at)
        self._lock = threading.Lock()

    def get(self, project_id: int, name: str, read: Callable[[], str | None]) -> str | None:
        key = (project_id, name)
        with self._lock:
            known = self._known.get(key)
        if known is not None and self._clock() - known[1] < self._max_age:
            return known[0]
        read_at = self._clock()
        found = read()  # outside the lock: a store read
        with self._lock:
            if found is None:
                self._known.pop(key, None)
                return None
            if len(self._known) >= self._limit:
                self._known.clear()
            self._known[key] = (found, read_at)
        return found

    def forget(self, project_id: int) -> None:
        """Drop the project's types: the next page reads each again."""
        with self._lock:
            for key in [k for k in self._known if k[0] == project_id]:
                del self._known[key]


def written_types(state: State) -> WrittenTypes:
    """The server's (``app.state.score_types``)."""
    types: WrittenTypes = state.score_types
    return types
