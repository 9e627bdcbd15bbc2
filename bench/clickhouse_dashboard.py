"""The dashboard on a large ClickHouse store, on chDB.

    python tests/store/chdb_http.py --port 8124 --path /tmp/chbench &   # the engine
    python bench/clickhouse_dashboard.py --url clickhouse://default:@127.0.0.1:8124 \\
        --sessions 100000 [--fill] [--runs 10]

Fills a database named ``dashboard_<sessions>`` (``--fill``, once) with ``--sessions``
sessions over the 30 days ending now, each of 2 traces of 5 spans (1,000 users; a root
and 4 LLM calls with tokens and cost; one span in 97 failing; the root tagged one of
``tier-0..2`` by trace, with metadata ``app_version`` one of ``1.0..1.3`` by session),
made by ClickHouse itself (``INSERT INTO span_intake ... SELECT FROM numbers()``, as
``clickhouse_scale.py`` does), so every materialized view of the store code on the path
runs. Then times ``Store.metrics`` (every query of the Dashboard tab and
``/api/v1/metrics``) for the 30 days by day, by week, for the last day by hour,
filtered by a user, filtered by a user and grouped by tag, narrowed by one tag and by
one metadata pair, grouped by tag and grouped by a metadata key, and prints p50 / p95
in milliseconds (with ``--engine-pid``, the p50 of the wall time and of the CPU the
engine's process and this client spent per call; with ``--statements`` too, each
statement's, run one at a time). Before timing, runs the refresh pass that derives the
dashboard's per-slice figures twice (the first on a database new to them computes every
slice) and prints what each took.
"""

from __future__ import annotations

import argparse
import re
import statistics
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import clickhouse_scale

from threadline.server.model import METRIC_NAMES, MetricsQuery
from threadline.server.store import open_store

DAYS = 30


def fill(store: Any, sessions: int) -> int:
    # The scale benchmark's rows, at the rate that puts ``sessions`` in 30 days.
    clickhouse_scale.SESSIONS_PER_DAY = max(1, sessions // DAYS)
    clickhouse_scale.LABELS = True
    return clickhouse_scale.fill(store, sessions * clickhouse_scale.SPANS_PER_SESSION)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="clickhouse://user:pw@host:port (no db)")
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--fill", action="store_true", help="fill the database first")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--database", help="default: dashboard_<sessions>")
    parser.add_argument("--only", help="time only the case of this label")
    parser.add_argument(
        "--engine-pid",
        type=int,
        help="the engine's process (chdb_http.py): also print its CPU and the client's per call",
    )
    parser.add_argument(
        "--statements",
        action="store_true",
        help="with --engine-pid: also each statement's engine CPU, run one at a time",
    )
    args = parser.parse_args()
    database = args.database or f"dashboard_{args.sessions}"
    store = open_store(f"{args.url.rstrip('/')}/{database}")
    if args.fill:
        began = time.perf_counter()
        fill(store, args.sessions)
        print(f"filled in {time.perf_counter() - began:.0f} s")
    project = next(p.id for p in store.list_projects() if p.name == "scale")
    # The figures the dashboard reads are derived in the background: a pass brings them
    # up to date (on a store new to it, every slice: the backfill), a second finds
    # nothing changed.
    for _ in range(2):
        began = time.perf_counter()
        slices = store.refresh_metrics()
        print(f"refresh pass: {slices} slices in {time.perf_counter() - began:.2f} s")
    now = datetime.now(UTC)
    month_ago = now - timedelta(days=DAYS)
    cases = {
        f"{DAYS} days by day": MetricsQuery(bucket="day", start=month_ago, end=now),
        f"{DAYS} days by week": MetricsQuery(bucket="week", start=month_ago, end=now),
        "last day by hour": MetricsQuery(bucket="hour", start=now - timedelta(days=1), end=now),
        f"{DAYS} days by day, one user": MetricsQuery(
            bucket="day", user_id="user-7", start=month_ago, end=now
        ),
        f"{DAYS} days by day, one user, by tag": MetricsQuery(
            bucket="day", user_id="user-7", group_by="tag", start=month_ago, end=now
        ),
        f"{DAYS} days by day, by tag": MetricsQuery(
            bucket="day", group_by="tag", start=month_ago, end=now
        ),
        f"{DAYS} days by day, one tag": MetricsQuery(
            bucket="day", tag="tier-1", start=month_ago, end=now
        ),
        f"{DAYS} days by day, one metadata pair": MetricsQuery(
            bucket="day", metadata={"app_version": "1.2"}, start=month_ago, end=now
        ),
        f"{DAYS} days by day, by metadata": MetricsQuery(
            bucket="day",
            group_by="metadata",
            group_key="app_version",
            start=month_ago,
            end=now,
        ),
    }
    first = store.metrics(project, cases[f"{DAYS} days by day"], METRIC_NAMES)
    sessions = sum(v or 0 for s in first.series if s.metric == "sessions" for v in s.values)
    print(f"{args.sessions:,} sessions filled; the month's bars add up to {sessions:,.0f}")
    for label, query in cases.items():
        if args.only and label != args.only:
            continue
        call = partial(store.metrics, project, query, METRIC_NAMES)
        if args.engine_pid:
            timed_with_cpu(label, call, args.runs, args.engine_pid)
            if args.statements:
                by_statement(store, call, args.runs, args.engine_pid)
        else:
            clickhouse_scale.timed(label, call, args.runs)
    store.close()


def engine_cpu_ms(pid: int) -> float:
    """The CPU time all threads of process ``pid`` have run so far (schedstat, ns)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[0])
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
    return total / 1e6


def timed_with_cpu(label: str, call: Callable[[], Any], runs: int, pid: int) -> None:
    """Wall time and, beside it, the CPU the engine (process ``pid``, alone in serving
    this benchmark) and this client spent per call: on a machine shared with other
    work, CPU moves far less with the load than wall time does."""
    call()  # warm
    wall, engine, client = [], [], []
    for _ in range(runs):
        e0, c0, w0 = engine_cpu_ms(pid), time.process_time(), time.perf_counter()
        call()
        wall.append((time.perf_counter() - w0) * 1000)
        engine.append(engine_cpu_ms(pid) - e0)
        client.append((time.process_time() - c0) * 1000)
    print(
        f"  {label:<34} wall p50 {statistics.median(wall):8.1f} ms   CPU p50: engine"
        f" {statistics.median(engine):6.1f} ms, client {statistics.median(client):5.1f} ms"
    )


def by_statement(store: Any, call: Callable[[], Any], runs: int, pid: int) -> None:
    """The engine's CPU and the wall time of each statement of ``call``, named by the
    line of the store's code that ran it: the statements are run one at a time (those
    the store runs side by side wait for each other), so the engine's CPU over one is
    that statement's alone."""
    plain = store._rows
    one_at_a_time = threading.Lock()
    spent: dict[str, list[tuple[float, float]]] = defaultdict(list)

    def rows(sql: str, params: Any = None) -> Any:
        # Run on another thread, the statement is named by the first table it reads.
        caller = next(
            (
                f"{Path(f.filename).name}:{f.lineno}"
                for f in reversed(traceback.extract_stack()[:-1])
                if "/store/clickhouse/" in f.filename
            ),
            "beside: " + " ".join(re.findall(r"FROM (\w+)", sql)[:2]),
        )
        with one_at_a_time:
            e0, w0 = engine_cpu_ms(pid), time.perf_counter()
            found = plain(sql, params)
            spent[caller].append((engine_cpu_ms(pid) - e0, (time.perf_counter() - w0) * 1000))
        return found

    store._rows = rows
    try:
        for _ in range(runs):
            call()
    finally:
        del store._rows
    for caller, times in spent.items():
        engine = statistics.median(t[0] for t in times) * len(times) / runs
        wall = statistics.median(t[1] for t in times) * len(times) / runs
        print(
            f"    {caller:<30} x{len(times) / runs:<4g} engine {engine:7.1f} ms"
            f"  wall {wall:7.1f} ms"
        )


if __name__ == "__main__":
    main()
