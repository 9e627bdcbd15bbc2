"""A full disk, as SQLite reports it.

A write that finds no space fails with ``SQLITE_FULL``; one that fails in the middle of
an ``fsync`` or of growing the shared-memory file can come back as an I/O error instead,
which counts as a full disk when the file system has (almost) no space left. Either way
the write becomes ``StorageFull``: a 503 with ``Retry-After`` (gRPC ``UNAVAILABLE``),
which OTLP exporters retry, where a 500 would make them drop the data.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from threadline.server.errors import StorageFull
from threadline.server.store.sqlite.driver import sqlite3

# Below this much free space an I/O error is taken for a full disk.
_NEARLY_FULL_BYTES = 1 << 20


@contextmanager
def full_disk_as_storage_full(directory: Path) -> Iterator[None]:
    """Around a write to the database in ``directory``: a full disk raises
    ``StorageFull`` (from the SQLite error); any other error goes on as it is."""
    try:
        yield
    except sqlite3.Error as error:
        full = storage_full(error, directory)
        if full is not None:
            raise full from error
        raise


def storage_full(error: sqlite3.Error, directory: Path) -> StorageFull | None:
    """``error`` as ``StorageFull`` if a full disk caused it, else None."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL or (
        code == sqlite3.SQLITE_IOERR and free_bytes(directory) < _NEARLY_FULL_BYTES
    ):
        return StorageFull(
            f"the disk of the store is full ({free_bytes(directory):,} bytes free): "
            "retry later; writing resumes by itself once there is space"
        )
    return None


def free_bytes(directory: Path) -> int:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return 0
