"""What the ClickHouse tests that count a page's statements share: a store of the test's
own on the shared chDB endpoint, and a record of the SQL it sends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tests.store.chdb_http import own_database_url
from threadline.server.store import open_store
from threadline.server.store.clickhouse.store import ClickHouseStore

T = TypeVar("T")


@contextmanager
def own_store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    """A ClickHouse store in a database named after the test's directory."""
    opened = open_store(own_database_url(tmp_path))
    assert isinstance(opened, ClickHouseStore)
    try:
        yield opened
    finally:
        opened.close()


def _record(
    store: ClickHouseStore, entry: Callable[[str, dict[str, Any]], T], scores: bool
) -> list[T]:
    """``entry(text, parameters)`` of every statement ``store`` runs from now on, appended
    as it runs; with ``scores``, its score half's statements too (they go through rows of
    their own)."""
    statements: list[T] = []
    rows = store._rows

    def recording(sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        statements.append(entry(sql, dict(params or {})))
        return rows(sql, params)

    store._rows = recording  # type: ignore[method-assign]
    if scores:
        store._scores._rows = recording
    return statements


def recorded_sql(store: ClickHouseStore) -> list[str]:
    """The text of every statement ``store`` runs from now on."""
    return _record(store, lambda sql, _: sql, scores=False)


def recorded_with_params(
    store: ClickHouseStore, *, scores: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """(text, parameters) of every statement ``store`` runs from now on."""
    return _record(store, lambda sql, params: (sql, params), scores)
