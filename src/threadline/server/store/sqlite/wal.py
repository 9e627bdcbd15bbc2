"""The write-ahead log, kept small by a checkpointer thread.

Commits only append to the WAL (``threadline.db-wal``); copying its pages into the
database file (a checkpoint) is left to this thread, beside the writer, since a
checkpoint copies and fsyncs and took half the time of a commit. A ``PASSIVE``
checkpoint every 0.2 s never blocks the writer or readers, but while commits keep
coming it rarely catches up with all of them, and SQLite only starts the log over from
its beginning once every frame is copied: the file grew to ~200 MB within seconds of
steady load. So the thread also runs a ``TRUNCATE`` checkpoint, which waits for the
commit in progress, copies the rest and empties the file:

- when the file has grown past ``RESTART_BYTES``, which bounds it under load;
- when nothing was committed since the last pass, so an idle server keeps no WAL.

An error (a full disk: the database file cannot grow) does not stop the thread: it
logs once, retries with growing pauses (up to ``_MAX_PAUSE_S``) and says when
checkpoints work again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from threadline.server.store.sqlite.driver import sqlite3

log = logging.getLogger("threadline.store")

# A truncating checkpoint once the log is this large (a transaction still in progress
# may take it past this: a 10,000-span export writes tens of MB).
RESTART_BYTES = 32 * 1024 * 1024
# What SQLite keeps of the file when it starts the log over (journal_size_limit).
KEEP_BYTES = 16 * 1024 * 1024
_PAUSE_S = 0.2
_MAX_PAUSE_S = 5.0


class Checkpointer:
    """The thread that checkpoints one database's WAL (see the module's docstring)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], wal_path: Path) -> None:
        self._connect = connect
        self._wal_path = wal_path
        self._closing = threading.Event()
        self._last_frames = -1
        self._thread = threading.Thread(target=self._run, name="threadline-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        self._thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        pause = _PAUSE_S
        failing = False
        while not self._closing.wait(pause):
            try:
                if conn is None:
                    conn = self._connect()
                self._checkpoint(conn)
            except sqlite3.Error as error:
                if not failing:
                    log.warning("WAL checkpoint failed (%s); retrying", error)
                failing = True
                pause = min(pause * 2, _MAX_PAUSE_S)
                continue
            if failing:
                log.warning("WAL checkpoints work again")
            failing = False
            pause = _PAUSE_S
        if conn is not None:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        idle = frames == self._last_frames and frames == copied
        self._last_frames = frames
        if frames > 0 and (idle or self._wal_bytes() >= RESTART_BYTES):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            self._last_frames = -1

    def _wal_bytes(self) -> int:
        try:
            return self._wal_path.stat().st_size
        except FileNotFoundError:
            return 0
