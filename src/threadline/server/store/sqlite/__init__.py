"""The embedded SQLite backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from threadline.server.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]


def __getattr__(name: str) -> Any:
    # Imported on first use: an ingest worker process imports this package for the
    # modules that build rows (span_batch.py), never the store itself.
    if name != "SQLiteStore":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from threadline.server.store.sqlite.store import SQLiteStore

    return SQLiteStore
