"""Storage: the ``Store`` protocol and the backends that implement it."""

from __future__ import annotations

from threadline.server.store.base import Store


def open_store(url: str) -> Store:
    """The backend a storage URL names: ``sqlite:///absolute/path/threadline.db``."""
    if url.startswith("sqlite://"):
        from threadline.server.store.sqlite import SQLiteStore

        path = url[len("sqlite://") :]
        # Accept SQLAlchemy's four-slash spelling of an absolute path too.
        return SQLiteStore(path[1:] if path.startswith("//") else path)
    raise SystemExit(f"threadline: unsupported store URL {url!r} (expected sqlite:///path)")


__all__ = ["Store", "open_store"]
