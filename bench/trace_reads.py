"""How long a SQLite store takes to read a trace, a session, a list and a search, read
in this process (no server): for A/B pairs of two stores written by the same workload
(e.g. two ``server_growth.py --data-dir`` runs, one per version of the code).

    PYTHONPATH=src python bench/trace_reads.py /work/bench-data/tk-B/threadline.db

Opens the store (a store an older version of the code wrote is migrated when the newer
one opens it: copy it first), picks its newest sessions and their traces, and prints
p50/p95 in ms of: the sessions list (50), a session's detail, a trace's detail (its
spans read by trace id), the bulk export's JSON of 50 traces, 100 reads of the live
feed's watermark (one statement each), and a search of the traces list. Cold reads are
the OS page cache's: run each store twice, alternating. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from threadline.server.model import SessionQuery, TraceQuery
from threadline.server.store.sqlite import SQLiteStore


def _timed(calls: list[Callable[[], object]]) -> str:
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    ordered = sorted(times)
    p95 = ordered[max(int(len(ordered) * 0.95) - 1, 0)]
    return f"{statistics.median(ordered):7.2f} / {p95:7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", type=Path)
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    store = SQLiteStore(args.database)
    try:
        project = 1
        with store._read() as conn:
            project = conn.execute("SELECT min(id) FROM projects").fetchone()[0]
        sessions = store.list_sessions(project, SessionQuery(limit=args.reads)).items
        traces = store.list_traces(project, TraceQuery(limit=args.reads)).items
        ids = [t.trace_id for t in traces]
        n = args.reads
        print(f"{args.database}: {len(sessions)} sessions, {len(ids)} traces read, p50 / p95 ms")
        rows: dict[str, list[Callable[[], object]]] = {
            "sessions list": [
                lambda: store.list_sessions(project, SessionQuery(limit=50)) for _ in range(n)
            ],
            "session detail": [partial(store.get_session, project, s.session_id) for s in sessions],
            "trace detail": [partial(store.get_trace, project, t) for t in ids],
            "50 traces' JSON": [lambda: store.trace_details_json(project, ids) for _ in range(10)],
            # The smallest read, one statement: what a read's own transaction adds.
            "100 watermarks": [
                lambda: [store.live_watermark(project) for _ in range(100)] for _ in range(n)
            ],
            "traces search": [
                lambda: store.list_traces(project, TraceQuery(q="error", limit=50))
                for _ in range(10)
            ],
        }
        for name, calls in rows.items():
            print(f"  {name:18s} {_timed(calls)}")
    finally:
        store.close()


if __name__ == "__main__":
    main()
