"""Where a write's time goes as the SQLite store grows, per window of spans.

    python bench/ingest_growth.py --spans 1000000 --window 100000

Writes the workload of ``workload.py`` into a fresh SQLite store on one thread, without
HTTP or worker processes: each export is prepared (decoded, normalised, the store's
rows made) and then written, as the writer thread does. For each window it prints µs
per span of the preparation and of each part of the write transaction (search index,
rollups, inferred sessions, and the rest: span insert and commit), and the bytes the
process read from files per span (``rchar``: SQLite's page-cache misses, served by
the OS page cache or the disk), so that what grows with the store shows, and by how much.

``--cache-mib`` sets the writer connection's page cache (default: the store's own).
``--fts5 automerge=8`` (repeatable) sets an option of the search index for the run;
``--index-0009`` makes the index as migration 0009 did (without contentless_delete).
``--cpu`` times by the thread's CPU time instead of the wall clock: on a shared machine
the wall clock counts the time other jobs hold the core (the write is CPU-bound: WAL
commits do not wait for the disk).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload

from threadline.server import pricing
from threadline.server.ingest.decode import PROTOBUF, decode_request
from threadline.server.ingest.normalize import normalize_request
from threadline.server.ingest.tuning import tune_garbage_collector
from threadline.server.store.sqlite import SQLiteStore, inference, search, span_writes

P = ParamSpec("P")
R = TypeVar("R")

_PARTS = ("prepare", "search", "rollups", "inference", "insert+commit")


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=100_000)
    parser.add_argument("--cache-mib", type=int, default=0)
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument(
        "--index-0009",
        action="store_true",
        help="the search index as migration 0009 made it (no contentless_delete)",
    )
    parser.add_argument(
        "--fts5",
        action="append",
        default=[],
        metavar="OPTION=VALUE",
        help="an FTS5 option of the search index for the run, e.g. automerge=8 (repeatable)",
    )
    args = parser.parse_args()
    clock = time.thread_time if args.cpu else time.perf_counter
    pricing.load()
    tune_garbage_collector()
    spent: dict[str, float] = defaultdict(float)

    def timed(part: str, function: Callable[P, R]) -> Callable[P, R]:
        def run(*a: P.args, **k: P.kwargs) -> R:
            started = clock()
            try:
                return function(*a, **k)
            finally:
                spent[part] += clock() - started

        return run

    # The parts of SpanWrites.write_spans, timed where it calls them.
    search.index = timed("search", search.index)
    inference.place = timed("inference", inference.place)
    span_writes.SpanWrites._refresh_rollups = timed(  # type: ignore[method-assign]
        "rollups", span_writes.SpanWrites._refresh_rollups
    )
    with tempfile.TemporaryDirectory(prefix="threadline-growth-") as tmp:
        store = SQLiteStore(Path(tmp) / "growth.db")
        if args.index_0009:  # a fresh store: nothing indexed yet
            store._writer.executescript(
                "DROP TABLE search_text; CREATE VIRTUAL TABLE search_text USING fts5("
                "body, content = '', tokenize = 'unicode61 remove_diacritics 2');"
            )
        for option in args.fts5:
            name, value = option.split("=", 1)
            store._writer.execute(
                "INSERT INTO search_text (search_text, rank) VALUES (?, ?)", (name, int(value))
            )
        if args.cache_mib:
            store._writer.execute(f"PRAGMA cache_size=-{args.cache_mib * 1024}")
        project = store.create_project("growth").id
        print(
            "    spans" + "".join(f"{p:>14}" for p in _PARTS) + "   wall µs/span  rchar B/span",
            flush=True,
        )
        done, window_start, rchar_start = 0, clock(), _rchar()
        for batch in workload.batches(args.spans):
            started = clock()
            records = normalize_request(decode_request(batch.body, PROTOBUF)).spans
            prepared = store.span_preparer()(project, records)
            spent["prepare"] += clock() - started
            before = dict(spent)
            started = clock()
            store.write_spans(project, records, prepared)
            whole = clock() - started
            inner = sum(spent[p] - before.get(p, 0.0) for p in ("search", "rollups", "inference"))
            # What remains of the write: the span insert and the commit.
            spent["insert+commit"] += whole - inner
            done += batch.spans
            if done % args.window < batch.spans:
                elapsed = clock() - window_start
                read = _rchar() - rchar_start
                _report(done, spent, args.window, elapsed, read)
                spent.clear()
                window_start, rchar_start = clock(), _rchar()
        store.close()


def _report(done: int, spent: dict[str, float], window: int, elapsed: float, read: int) -> None:
    per = {p: spent.get(p, 0.0) / window * 1e6 for p in _PARTS}
    cells = "".join(f"{per[p]:14.1f}" for p in _PARTS)
    print(f"{done:>9,}{cells}{elapsed / window * 1e6:15.1f}{read / window:14.0f}", flush=True)


if __name__ == "__main__":
    main()
