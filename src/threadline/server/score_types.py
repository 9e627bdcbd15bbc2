"""Score names' types as the routes see them: the rule every score write keeps (one
name, one type: ``store/name_types.py``) read through a store, and the types as the
lists' score columns show them (``web/score_columns.py``), kept by each server process;
the routes that delete scores or change score configurations, in the JSON API and the
UI, forget those."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from starlette.datastructures import State

from threadline.server import scoring
from threadline.server.model import ScoreConfig, ScoreIn, ScoreQuery, ScoreRecord
from threadline.server.store import Store
from threadline.server.store.name_types import NameTypes


def name_types(store: Store, project_id: int, configs: Mapping[str, ScoreConfig]) -> NameTypes:
    """The rule of one name, one type (``store/name_types.py``) over ``store``: a name's
    newest score read by the ``scores_by_name`` index, one read a name. The routes use
    it to type a value given without a type, or to refuse one item of a batch alone;
    the store's write checks every score again, in its own write."""

    return NameTypes(
        lambda name: newest_type(store, project_id, name),
        {n: c.data_type for n, c in configs.items()},
    )


def newest_type(store: Store, project_id: int, name: str) -> str | None:
    """The type ``name``'s newest score was written with (one read by the
    ``scores_by_name`` index); None if it has none."""
    newest = store.list_scores(project_id, ScoreQuery(name=name, limit=1))
    return newest.items[0].data_type if newest.items else None


def prepare(
    score: ScoreIn,
    configs: dict[str, ScoreConfig],
    source: str,
    now_ns: int,
    types: NameTypes,
) -> ScoreRecord:
    """``scoring.prepare`` of ``score``, given the type its name holds when it gives
    none (read then only: a typed score needs no read here)."""
    name_type = types.held(score.name) if score.data_type is None else None
    return scoring.prepare(score, configs, source, now_ns, name_type)


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


def filter_types(state: State, store: Store, project_id: int) -> Callable[[str], str | None]:
    """The type of a name a score filter compares (``scoring.fit_to_types``): its
    configuration's, else the type its latest score was written with, kept a while as
    the lists' columns keep it. Reads nothing until a filter asks."""
    configs: dict[str, str] | None = None

    def type_of(name: str) -> str | None:
        nonlocal configs
        if configs is None:
            configs = {c.name: c.data_type for c in store.list_score_configs(project_id)}
        if name in configs:
            return configs[name]
        return written_types(state).get(
            project_id, name, lambda: newest_type(store, project_id, name)
        )

    return type_of
