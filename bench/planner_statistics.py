"""What ``PRAGMA optimize`` (planner statistics, ``sqlite_stat1``) would cost a large
store and what it changes in the lists' and the dashboard's reads.

    cp <the kept 1M-span base, given scores> /tmp/x/threadline.db   # a copy: this writes
    python bench/planner_statistics.py --db /tmp/x/threadline.db [--analysis-limit 400]

Reads (thread CPU ms, p50 of ``--repeat``) without statistics, then after
``PRAGMA optimize=0x10002`` (SQLite 3.46+: every table that needs it, on this
connection; with ``--analysis-limit`` N, ``PRAGMA analysis_limit=N`` first, an
approximate analysis that reads at most ~N rows of each index), whose time it prints,
with a second ``PRAGMA optimize`` (what a periodic one costs when nothing changed), then
without statistics again (``sqlite_stat1`` and ``sqlite_stat4`` emptied): without, with,
without. Each read's plan steps with and without are printed where they differ.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from threadline.server.model import (
    METRIC_NAMES,
    MetricsQuery,
    SessionQuery,
    TraceQuery,
    UserQuery,
    ns_to_datetime,
)
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.store import SQLiteStore

END_NS = 1796662652000000000  # the kept base's end (its .json)


def reads(store: SQLiteStore, project: int) -> dict[str, Callable[[], object]]:
    end = ns_to_datetime(END_NS)
    day, month = end - timedelta(days=1), end - timedelta(days=30)
    names = [*METRIC_NAMES, "score:quality"]
    return {
        "Sessions, a day": lambda: store.list_sessions(project, SessionQuery(start=day, end=end)),
        "Sessions by start, a day": lambda: store.list_sessions(
            project, SessionQuery(sort="start", start=day, end=end)
        ),
        "Sessions by cost, 30 days": lambda: store.list_sessions(
            project, SessionQuery(sort="cost", start=month, end=end)
        ),
        "Sessions by tokens, 30 days": lambda: store.list_sessions(
            project, SessionQuery(sort="tokens", start=month, end=end)
        ),
        "Traces, a day": lambda: store.list_traces(project, TraceQuery(start=day, end=end)),
        "Users, 30 days": lambda: store.list_users(project, UserQuery(start=month, end=end)),
        "Dashboard, 30 days by day": lambda: store.metrics(
            project, MetricsQuery(bucket="day", start=month, end=end), names
        ),
        "Dashboard, one user, 30 days": lambda: store.metrics(
            project, MetricsQuery(bucket="day", user_id="user-7", start=month, end=end), names
        ),
    }


def plans(store: SQLiteStore, run: Callable[[], object]) -> list[str]:
    seen: list[str] = []
    with store._read() as conn:
        conn.set_trace_callback(seen.append)
    run()
    with store._read() as conn:
        conn.set_trace_callback(None)
        return [
            row[3]
            for sql in dict.fromkeys(seen)
            if sql.lstrip().upper().startswith(("SELECT", "WITH"))
            for row in conn.execute("EXPLAIN QUERY PLAN " + sql)
            if row[3].startswith(("SEARCH", "SCAN"))
        ]


def measure(path: Path, repeat: int) -> dict[str, tuple[float, list[str]]]:
    store = SQLiteStore(path)
    project = next(p.id for p in store.list_projects() if p.name == "default")
    out = {}
    for label, run in reads(store, project).items():
        run()
        taken = []
        for _ in range(repeat):
            started = time.thread_time()
            run()
            taken.append(time.thread_time() - started)
        out[label] = (statistics.median(taken) * 1e3, plans(store, run))
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--analysis-limit", type=int, default=0)
    args = parser.parse_args()
    without = measure(args.db, args.repeat)
    conn = sqlite3.connect(args.db, isolation_level=None)
    if args.analysis_limit:
        conn.execute(f"PRAGMA analysis_limit={args.analysis_limit}")
    took = []
    for _ in range(2):
        started, cpu = time.perf_counter(), time.thread_time()
        conn.execute("PRAGMA optimize=0x10002").fetchall()
        took.append((time.perf_counter() - started, time.thread_time() - cpu))
    rows = conn.execute("SELECT COUNT(*) FROM sqlite_stat1").fetchone()[0]
    samples = (
        conn.execute("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'sqlite_stat4'").fetchone()[0]
        and conn.execute("SELECT COUNT(*) FROM sqlite_stat4").fetchone()[0]
    )
    conn.close()
    print(
        f"PRAGMA optimize=0x10002 (analysis_limit {args.analysis_limit or 'none'}):"
        f" first {took[0][0]:.2f} s wall, {took[0][1]:.2f} s CPU;"
        f" again {took[1][0] * 1e3:.1f} ms wall; sqlite_stat1 rows {rows}, sqlite_stat4 {samples}"
    )
    with_stats = measure(args.db, args.repeat)
    conn = sqlite3.connect(args.db, isolation_level=None)
    # SQLite built with STAT4 (pysqlite3's is) keeps samples in sqlite_stat4 as well.
    for (table,) in conn.execute(
        "SELECT name FROM sqlite_schema WHERE name IN ('sqlite_stat1', 'sqlite_stat4')"
    ).fetchall():
        conn.execute(f"DELETE FROM {table}")
    conn.close()
    again = measure(args.db, args.repeat)
    print("read | without | with | without again (CPU ms, p50)")
    for label in without:
        print(
            f"{label} | {without[label][0]:.1f} | {with_stats[label][0]:.1f}"
            f" | {again[label][0]:.1f}"
        )
        if without[label][1] != with_stats[label][1]:
            print(f"    without: {'; '.join(without[label][1])}")
            print(f"    with:    {'; '.join(with_stats[label][1])}")


if __name__ == "__main__":
    main()
