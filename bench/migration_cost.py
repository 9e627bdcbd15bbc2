"""The one-off cost of a SQLite store's pending migrations: time, CPU, memory, WAL.

    cp -r /work/bench-data/tk-B <own dir>/copy
    python bench/migration_cost.py <own dir>/copy/threadline.db

Opens the store as the server does (``SQLiteStore``, which applies the pending
migrations before anything else), on a COPY (the file is upgraded in place), and prints
the wall time the opening took, this process's CPU and peak RSS, and the largest size
the WAL reached (sampled every 0.2 s by a thread), with the versions before and after.
A benchmark aid, not a test.
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from pathlib import Path

from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.store import SQLiteStore


def _highest_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0])
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path)
    args = parser.parse_args()
    path: Path = args.database
    if not path.exists():
        sys.exit(f"no store at {path}")
    before = _highest_version(path)
    wal = Path(f"{path}-wal")
    peak_wal = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            if wal.exists():
                peak_wal[0] = max(peak_wal[0], wal.stat().st_size)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    cpu = time.process_time()
    start = time.monotonic()
    store = SQLiteStore(path)
    opened = time.monotonic() - start
    store.close()
    done.set()
    watcher.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"versions {before} -> {_highest_version(path)}")
    print(f"open (migrations): {opened:.1f} s wall, {time.process_time() - cpu:.1f} s CPU")
    print(f"peak RSS {usage.ru_maxrss / 1024:.0f} MB, WAL peak {peak_wal[0] / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
