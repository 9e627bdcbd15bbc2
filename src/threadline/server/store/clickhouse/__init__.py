"""The ClickHouse store: one database shared by any number of Threadline servers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from threadline.server.store.clickhouse.store import ClickHouseStore

__all__ = ["ClickHouseStore"]


def __getattr__(name: str) -> Any:
    # Imported on first use: an ingest worker process imports this package for the
    # modules that build an export's rows (export_rows.py), never the store itself.
    if name != "ClickHouseStore":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from threadline.server.store.clickhouse.store import ClickHouseStore

    return ClickHouseStore
