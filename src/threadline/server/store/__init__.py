"""Storage: the ``Store`` protocol and the backends that implement it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from threadline.server.errors import ConfigurationError

if TYPE_CHECKING:
    from threadline.server.store.base import Store


def open_store(url: str, retention_days: int | None = None) -> Store:
    """The backend a storage URL names: ``sqlite:///absolute/path/threadline.db`` or
    ``clickhouse://user:password@host:8123/database``.

    ``retention_days`` (0: keep forever; None: leave as configured, for tools like
    ``threadline keys``) is a TTL on the ClickHouse tables; the SQLite store keeps
    everything and ignores it.
    """
    if url.startswith(("clickhouse://", "clickhouses://")):
        from threadline.server.store.clickhouse import ClickHouseStore

        return ClickHouseStore(url, retention_days=retention_days)
    path = sqlite_path(url)
    if path is not None:
        from threadline.server.store.sqlite import SQLiteStore

        return SQLiteStore(path)
    raise ConfigurationError(
        f"unsupported store URL {url!r}"
        " (expected sqlite:///path or clickhouse://user:pass@host:8123/db)"
    )


def sqlite_path(url: str) -> str | None:
    """The file a ``sqlite://`` URL names, or None for another kind of URL."""
    if not url.startswith("sqlite://"):
        return None
    path = url[len("sqlite://") :]
    # Accept SQLAlchemy's four-slash spelling of an absolute path too.
    return path[1:] if path.startswith("//") else path


__all__ = ["Store", "open_store", "sqlite_path"]


def __getattr__(name: str) -> Any:
    # Imported on first use: an ingest worker process imports this package for the
    # modules that build rows (columns.py, rows.py), never the Store protocol, whose
    # records are the API's models.
    if name != "Store":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from threadline.server.store.base import Store

    return Store
