"""The embedded SQLite backend."""

from threadline.server.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
