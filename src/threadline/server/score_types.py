"""The type each project's score names were written with: the rule every score write
keeps (``NameTypes``: one name, one type), and the types as the lists' score columns show
them (``web/score_columns.py``), kept by each server process; the routes that delete
scores or change score configurations, in the JSON API and the UI, forget those."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping

from starlette.datastructures import State

from threadline.server.errors import Conflict
from threadline.server.model import ScoreConfig, ScoreQuery, ScoreRecord
from threadline.server.store import Store


class NameTypes:
    """The type of each score name of one project, as a write must keep it: a name's
    configuration sets it, else its first score (a name's scores are read newest first
    by the ``scores_by_name`` index, one read a name a write), else the first of the
    write's own scores to use it. A score of another type would mix values that cannot
    be averaged or filtered together (``helpful>=4`` over true/false), so it is refused.

    Two writers racing to give a new name two types can both pass; the check is a read,
    not a lock, as nothing else a score write does needs one."""

    def __init__(self, store: Store, project_id: int, configs: Mapping[str, ScoreConfig]):
        self._store = store
        self._project_id = project_id
        # A configured name's type is checked by ``scoring.prepare`` against its
        # configuration, which wins over what was written before it.
        self._types: dict[str, str | None] = {n: c.data_type for n, c in configs.items()}

    def held(self, name: str) -> str | None:
        """The type ``name`` holds, or None: any type may be its first."""
        if name not in self._types:
            newest = self._store.list_scores(self._project_id, ScoreQuery(name=name, limit=1))
            self._types[name] = newest.items[0].data_type if newest.items else None
        return self._types[name]

    def refusal(self, record: ScoreRecord) -> str | None:
        """Why ``record`` may not be written (its name holds another type), or None; a
        record let through sets its name's type for the records after it."""
        held = self.held(record.name)
        if held is None:
            self._types[record.name] = record.data_type
        elif held != record.data_type:
            return (
                f"score {record.name!r} holds {held} values: a {record.data_type} score"
                f" cannot join them (a name keeps its first score's type; use another name)"
            )
        return None

    def check(self, records: Iterable[ScoreRecord]) -> None:
        """``Conflict`` (409) on the first record whose name holds another type."""
        for record in records:
            refusal = self.refusal(record)
            if refusal is not None:
                raise Conflict(refusal)


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
