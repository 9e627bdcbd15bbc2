"""Does the search index's merging slow the writer down at some sizes of the index?

    python bench/search_growth.py --spans 5000000 --window 250000 --dir /work/bench-data/x

The documents of ``--base-spans`` spans of ``workload.py`` (as the workers make them,
``search.documents``) are written again and again under new trace keys into a fresh
database holding only the index's tables (migrations 0009 and 0016, ``automerge`` as
the store sets it), one transaction an export of 512 spans, as a quiet server's writer
commits them: with the store's pragmas (WAL, ``synchronous=NORMAL``, a 16 MiB cache),
and a ``PASSIVE`` checkpoint every 10 transactions (a ``TRUNCATE`` one once the WAL
passes 32 MiB) in the same thread, outside the figures. ``workload.py``'s vocabulary is
small, so repeating its documents grows the index as new spans of it would.

For each window of spans it prints the thread's CPU a span for the inserts and the
commit (FTS5 writes the transaction's segment and does its share of merging there),
the file reads and bytes read and written a span by those statements (``/proc``'s
counters of the thread: reads are page-cache misses), the transactions so far, and the
index's segments by level (``server_growth.py``: ``*`` where a level's segments are
being merged into the next). A benchmark, not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import workload  # noqa: E402
from search_writer import index_database  # noqa: E402
from server_growth import _fts5_levels  # noqa: E402

from threadline.server.ingest.decode import PROTOBUF, decode_request  # noqa: E402
from threadline.server.ingest.normalize import normalize_request  # noqa: E402
from threadline.server.store.sqlite import search, search_merging  # noqa: E402
from threadline.server.store.sqlite.driver import sqlite3  # noqa: E402

EXPORT = 512
WAL_RESTART = 32 * 1024 * 1024


def thread_io() -> tuple[int, int, int]:
    """This thread's read calls, bytes read and bytes written so far."""
    fields = dict(
        line.split(": ") for line in Path("/proc/thread-self/io").read_text().splitlines()
    )
    return int(fields["syscr"]), int(fields["rchar"]), int(fields["wchar"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=2_500_000)
    parser.add_argument("--window", type=int, default=250_000)
    parser.add_argument("--base-spans", type=int, default=51_200)
    parser.add_argument("--dir", type=Path, required=True, help="an empty directory for the file")
    parser.add_argument("--automerge", type=int, default=search_merging.AUTOMERGE)
    parser.add_argument(
        "--merge-pages",
        type=int,
        default=0,
        help="instead of FTS5's own merging: automerge 0, usermerge --automerge, and FTS5's "
        "'merge' command with this many pages after each transaction (counted with it)",
    )
    args = parser.parse_args()
    exports = [
        search.documents(
            search.by_trace(normalize_request(decode_request(batch.body, PROTOBUF)).spans)
        ).texts
        for batch in workload.batches(args.base_spans, EXPORT)
    ]
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / "index.db"
    if path.exists():
        raise SystemExit(f"{path} exists")
    settings = {"automerge": args.automerge}
    if args.merge_pages:
        settings = {"automerge": 0, "usermerge": args.automerge}
    conn = index_database(path, settings)
    # The same SQLite library as the writer's: two in one process would undo each
    # other's file locks (closing a file drops every lock the process holds on it).
    structure = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    wal = Path(f"{path}-wal")
    print(
        "    spans  transactions  CPU µs/span  reads/span  KB read  KB written  wall s"
        "   index levels (pages)",
        flush=True,
    )
    spans = transactions = key = 0
    window_cpu, window_io = 0.0, [0, 0, 0]
    mark = time.perf_counter()
    while spans < args.spans:
        texts = exports[transactions % len(exports)]
        rows = []
        for text in texts:
            key += 1
            rows.append((key << search.DOC_BITS, text))
        io_before, cpu_before = thread_io(), time.thread_time()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO search_text (rowid, body) VALUES (?, ?)", rows)
        conn.execute("COMMIT")
        if args.merge_pages:
            conn.execute(
                "INSERT INTO search_text (search_text, rank) VALUES ('merge', ?)",
                (args.merge_pages,),
            )
        window_cpu += time.thread_time() - cpu_before
        io_after = thread_io()
        window_io = [w + a - b for w, a, b in zip(window_io, io_after, io_before, strict=True)]
        transactions += 1
        spans += EXPORT
        if transactions % 10 == 0:
            wal_bytes = wal.stat().st_size if wal.exists() else 0
            mode = "TRUNCATE" if wal_bytes > WAL_RESTART else "PASSIVE"
            conn.execute(f"PRAGMA wal_checkpoint({mode})")
        if spans % args.window < EXPORT:
            now = time.perf_counter()
            calls, read, written = window_io
            done = args.window
            print(
                f"{spans:>9,}{transactions:>14,}{window_cpu / done * 1e6:>13.1f}"
                f"{calls / done:>12.2f}{read / done / 1024:>9.2f}{written / done / 1024:>12.2f}"
                f"{now - mark:>8.1f}   {_fts5_levels(structure)}",
                flush=True,
            )
            window_cpu, window_io, mark = 0.0, [0, 0, 0], now
    structure.close()
    conn.close()


if __name__ == "__main__":
    main()
