"""The SQLite file of the embedded store: its connections, its one writer, its schema.

One writer connection behind a lock does every write (in a server, from its one
writer thread: ingest/writer.py; a CLI command writing meanwhile waits on SQLite's own
lock); readers take connections from a
small pool and, thanks to WAL, never wait for the writer; each read is one snapshot
(``_read``). The other parts of
``SQLiteStore`` (span_writes.py, reads.py, access.py, transfer.py, evaluations.py)
read and write through ``_read`` and ``_transaction`` of this class.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from threadline.server.errors import ConfigurationError
from threadline.server.store import migrations
from threadline.server.store.sqlite import (
    driver,
    migration_ledger,
    passing_reads,
    search,
    search_merging,
    space,
    wal,
)
from threadline.server.store.sqlite.dictionaries import PayloadDictionaries
from threadline.server.store.sqlite.driver import sqlite3

_READERS = 8
_WAL_SAFETY_PAGES = 16_384  # 64 MiB of 4 KiB pages
log = logging.getLogger("threadline.store")


class Database:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Reentrant: adopting a payload dictionary writes it while holding the lock.
        self._write_lock = threading.RLock()
        self._writer = self._connect()
        migrate(self._writer)
        _refuse_an_older_engine(self._writer)
        self._payloads = PayloadDictionaries(self)
        # Upgraded to a version with the search index: index what was stored.
        with self._write_lock:
            search_merging.set_merging(self._writer)
            search.backfill(self._writer, self._payloads.unpacker())
        # Commits do not checkpoint the WAL into the database file: a background
        # thread does (wal.py). The high bound only stops the WAL from growing without
        # end should that thread ever fall behind; the size limit is what SQLite keeps
        # of the file when it starts the log over.
        self._writer.execute(f"PRAGMA wal_autocheckpoint={_WAL_SAFETY_PAGES}")
        self._writer.execute(f"PRAGMA journal_size_limit={wal.KEEP_BYTES}")
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._reading_once = threading.local()
        self._closing = threading.Event()
        self._checkpointer = wal.Checkpointer(self._connect, Path(f"{self.path}-wal"))
        self._checkpointer.start()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        new = not self.path.exists() or self.path.stat().st_size == 0
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if new:
            # Only takes on a new file, before WAL mode and the first table fix it: its
            # freed pages can then be given back in small steps (sqlite/retention.py).
            # Never asked of a file with content: on a full disk even that write fails,
            # and a server must start on a full disk.
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a crash of the process (what SIGKILL
        # tests), and only a power loss may roll back the last transactions.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-16384")  # 16 MiB a connection
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    @contextmanager
    def reading_once(self) -> Iterator[None]:
        """The reads this thread makes within the block pass through much of the file
        once (a bulk export's pages of a list): their connection keeps a small page
        cache while they run (passing_reads.py), rather than filling its 16 MiB with
        pages no one reads again, on every connection such a read happens to take."""
        self._reading_once.on = True
        try:
            yield
        finally:
            self._reading_once.on = False

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A reader connection in a read transaction of its own: every statement of the
        read sees the one committed state its first statement saw (a session's rollup
        and its traces, a page and its score summaries agree), whatever the writer
        commits meanwhile.

        The snapshot lasts until the ``with`` ends, and while it lasts a truncating
        checkpoint (wal.py) waits for it, holding back the writer: a read holds it for
        one call of the store, whose result it reads whole, never across a yield to a
        caller (a streamed export reads each batch in a snapshot of its own), and
        leaves no cursor unfinished behind it (an open statement keeps its snapshot).
        """
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            conn = self._connect()
        # Deferred: the snapshot is taken by the first SELECT, and nothing is locked.
        conn.execute("BEGIN")
        passing = getattr(self._reading_once, "on", False)
        try:
            with passing_reads.small_page_cache(conn) if passing else nullcontext(conn):
                yield conn
        finally:
            if _ended(conn) and self._readers.qsize() < _READERS:
                self._readers.put(conn)
            else:
                conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock, space.full_disk_as_storage_full(self.path.parent):
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (it does on some errors of a
                # full disk); a failed ROLLBACK must not hide the error that led here.
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        log.exception("ROLLBACK failed")
                raise

    def close(self) -> None:
        if self._closing.is_set():
            return
        self._closing.set()
        self._checkpointer.close()
        with self._write_lock:
            try:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as error:
                # A full disk, say: the WAL stays, and the next start reads it back.
                log.warning("the WAL could not be folded in at close (%s): kept", error)
            try:
                self._writer.close()
            except sqlite3.Error as error:
                log.warning("closing the database: %s", error)
            self._payloads.close()
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break


def _ended(conn: sqlite3.Connection) -> bool:
    """End a read's transaction (it wrote nothing: a rollback ends it as a commit
    would); False if that failed, and the connection must not be handed out again."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        log.exception("ending a read transaction failed")
        return False
    return not conn.in_transaction


def migrate(conn: sqlite3.Connection) -> None:
    """Apply every numbered file of ``migrations/`` the database has not applied, in
    number order (migration_ledger.py says which it has)."""
    scripts = migrations.scripts("threadline.server.store.sqlite")
    done = migration_ledger.applied(conn, scripts)
    for version, script in migrations.pending("threadline.server.store.sqlite", done):
        needed = driver.unmet_requirement(script)
        if needed is not None:
            # Applied by a later start on a newer engine; until then the store keeps
            # the schema (and behaviour) it had.
            log.warning(
                "migration %04d waits for SQLite %s (linked: %s)",
                version,
                needed,
                driver.describe(),
            )
            continue
        done.add(version)
        # executescript commits first, so the script and its record run in one
        # explicit transaction of their own.
        record = migration_ledger.recorded(version, max(done))
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\n{record}\nCOMMIT;")


def _refuse_an_older_engine(conn: sqlite3.Connection) -> None:
    """A store whose search index an engine of 3.43 or newer made again (migration 0016)
    cannot be written by an older one: FTS5 there refuses ``contentless_delete``, and
    every write would fail. Said at the start instead."""
    if search.deletes_by_rowid(conn) and not driver.supports(3, 43):
        raise ConfigurationError(
            f"this store's search index needs SQLite 3.43 or newer, and {driver.describe()}"
            " is linked: install pysqlite3-binary, or run a Python whose sqlite3 is newer"
        )
