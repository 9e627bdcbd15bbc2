"""What the ClickHouse tests that count a page's statements share: a store of the test's
own on the shared chDB endpoint, and a record of the SQL it sends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.store.chdb_http import database_name, shared_server
from threadline.server.store import open_store
from threadline.server.store.clickhouse.store import ClickHouseStore


@contextmanager
def own_store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    """A ClickHouse store in a database named after the test's directory."""
    opened = open_store(shared_server().url(database_name(tmp_path.name)))
    assert isinstance(opened, ClickHouseStore)
    try:
        yield opened
    finally:
        opened.close()


def recorded_sql(store: ClickHouseStore) -> list[str]:
    """The text of every statement ``store`` runs from now on, appended as it runs."""
    statements: list[str] = []
    rows = store._rows

    def recording(sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        statements.append(sql)
        return rows(sql, params)

    store._rows = recording  # type: ignore[method-assign]
    return statements
