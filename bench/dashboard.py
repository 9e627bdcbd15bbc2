"""The dashboard on a large store: is it fast, and what does it cost ingest?

    python bench/dashboard.py --sessions 100000

1. Fills a fresh SQLite store straight through ``Store.write_spans`` (ingest's write
   path, minus HTTP and protobuf) with ``--sessions`` sessions spread over the last 30
   days: 2 traces of 5 spans each (a root and 4 children, 2 of them LLM calls with
   tokens and cost, of two models), 5,000 users, tags and an ``app_version`` metadata
   key on the roots, 3 % of traces failing. 100,000 sessions make 1,000,000 spans.
2. Times ``Store.metrics`` (every query the Dashboard tab and ``/api/v1/metrics``
   run) for the 30 days by day, which the per-bucket aggregates answer, then grouped,
   filtered (both answered from the rollups), and by hour. ``--score-share F`` first
   scores a share F of the sessions and of their traces (one numeric score each), so
   that the score series read score rollups joined to their sessions and traces.
3. Ingest with and without what the dashboard adds to every write (the traces' index
   by their end, 0007's, narrowed by 0025; the triggers, aggregate tables and session indexes of
   0010; each trace's usage by model, kept in its row since 0017): two fresh stores,
   one with all of it dropped (and the trace and session upkeep skipped: ``no_dashboard.py``
   defines it, for ``dashboard_server.py`` too), fed the same
   batches in turns, in the same run, ``--pairs`` times, as a backfill (sessions at
   random over 30 days) and as live traffic (in the order they started, over the last
   hour); each write's wall and CPU time (the thread's). Each batch is prepared
   (``Store.span_preparer``: rows, rollups, search documents) apart from its write and
   both are timed, so the ratio is printed twice: of preparing plus writing, as one
   thread that calls ``write_spans`` pays, and of the write transaction alone, as a
   server's writer thread pays (its workers prepare in other processes, so preparing,
   the same in both stores, does not dilute the dashboard's share of the writer's
   time). ``--ingest-only`` skips steps 1 and 2. ``--separate`` writes each of the two
   stores alone in a process of its own instead, one after the other (the first arm
   alternating per pair): in one process the ratio depended on how many stores took
   turns (docs/benchmarks.md, round 7).
   The process's garbage collector is tuned as a server's is (``ingest/tuning.py``):
   with Python's default, a full collection (~4 µs a span of an arm) fell in one
   store's writes or the other's by how many objects each allocated, and moved an
   in-turns pair by 15 points (docs/benchmarks.md, round 10).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from threadline.server.ingest.tuning import tune_garbage_collector
from threadline.server.model import METRIC_NAMES, MetricsQuery, ScoreRecord, SpanRecord
from threadline.server.store.sqlite import SQLiteStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from no_dashboard import drop_schema, upkeep_skipped

MS = 1_000_000
S = 1000 * MS
HOUR = 3600 * S
DAY = 24 * HOUR
TAGS: tuple[list[str], ...] = (["support"], ["sales"], ["support", "beta"], [])
VERSIONS = ("1.0", "1.1", "2.0")


def batches(
    sessions: int, seed: int, end_ns: int, per_batch: int = 500, live: bool = False
) -> Iterator[list]:
    """Spans of ``sessions`` sessions over the 30 days before ``end_ns``, ``per_batch``
    sessions (10 spans each) at a time: in random order (a backfill), or ``live``, in
    the order they started, over the last hour (each batch a few seconds of traffic)."""
    rng = random.Random(seed)
    pending: list[SpanRecord] = []
    for s in range(sessions):
        if live:
            start = end_ns - HOUR + s * HOUR // sessions
        else:
            start = end_ns - 30 * DAY + rng.randrange(30 * DAY - 10 * 60 * S)
        for turn in range(2):
            trace_id = rng.getrandbits(128).to_bytes(16, "big").hex()
            t0 = start + turn * 60 * S
            root = rng.getrandbits(63).to_bytes(8, "big").hex()
            error = rng.random() < 0.03
            pending.append(
                SpanRecord(
                    trace_id=trace_id,
                    span_id=root,
                    parent_span_id=None,
                    name="handle_turn",
                    kind="SERVER",
                    start_ns=t0,
                    end_ns=t0 + 3 * S,
                    status="error" if error else "ok",
                    input=f'{{"message": "question {s}-{turn}"}}',
                    output='{"reply": "answer"}',
                    session_id=f"dash-{seed}-{s:07d}",
                    user_id=f"user-{s % 5000}",
                    tags=TAGS[s % len(TAGS)],
                    metadata={"app_version": VERSIONS[s % len(VERSIONS)]},
                )
            )
            for i in range(4):
                llm = i % 2 == 0
                pending.append(
                    SpanRecord(
                        trace_id=trace_id,
                        span_id=rng.getrandbits(63).to_bytes(8, "big").hex(),
                        parent_span_id=root,
                        name="chat" if llm else "tool",
                        kind="CLIENT",
                        start_ns=t0 + (i + 1) * 100 * MS,
                        end_ns=t0 + (i + 2) * 100 * MS,
                        status="ok",
                        span_type="LLM" if llm else "TOOL",
                        model=("gpt-4o-mini" if i == 0 else "claude-3-5-haiku") if llm else None,
                        input_tokens=rng.randrange(100, 2000) if llm else None,
                        output_tokens=rng.randrange(10, 300) if llm else None,
                        total_tokens=None,
                        cost_usd=rng.randrange(1, 500) / 1e5 if llm else None,
                    )
                )
        if (s + 1) % per_batch == 0 or s == sessions - 1:
            yield pending
            pending = []


def fill(path: Path, sessions: int, end_ns: int) -> tuple[SQLiteStore, int, float]:
    store = SQLiteStore(path)
    project = store.create_project("default").id
    started = time.perf_counter()
    for batch in batches(sessions, 1, end_ns):
        store.write_spans(project, batch)
    return store, project, time.perf_counter() - started


def add_scores(
    store: SQLiteStore, project: int, sessions: int, end_ns: int, share: float
) -> tuple[int, float]:
    """A "quality" score on ``share`` of the sessions ``fill`` wrote and on each of
    their traces (found again from the same batches, seeded alike); how many, and the
    CPU seconds of the ``write_scores`` calls alone (finding the traces again costs more)."""
    rng = random.Random(11)
    records: list[ScoreRecord] = []
    writing = 0.0

    def write() -> None:
        nonlocal writing, records
        started = time.thread_time()
        store.write_scores(project, records)
        writing += time.thread_time() - started
        records = []

    def score(session_id: str | None, trace_id: str | None) -> None:
        records.append(
            ScoreRecord(
                id=f"{rng.getrandbits(128):032x}",
                name="quality",
                data_type="numeric",
                value=float(rng.randint(1, 5)),
                label=None,
                session_id=session_id,
                trace_id=trace_id,
                span_id=None,
                source="api",
                author=None,
                comment=None,
                created_ns=end_ns,
            )
        )

    scored = set(random.Random(12).sample(range(sessions), int(sessions * share)))
    for batch in batches(sessions, 1, end_ns):
        roots = [span for span in batch if span.parent_span_id is None]
        for span in roots:
            if int(span.session_id.rsplit("-", 1)[1]) in scored:
                score(None, span.trace_id)
        for s in sorted({int(span.session_id.rsplit("-", 1)[1]) for span in roots} & scored):
            score(f"dash-1-{s:07d}", None)
        if len(records) >= 2000:
            write()
    if records:
        write()
    return len(scored) * 3, writing


def time_metrics(
    store: SQLiteStore, project: int, query: MetricsQuery, runs: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU ms of each run. On a shared, loaded machine the wall time is
    mostly waiting for a core; the CPU time (the query runs in this thread) is what
    the work costs."""
    names = list(METRIC_NAMES)
    store.metrics(project, query, names)  # warm the page cache
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.thread_time()
        store.metrics(project, query, names)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - started_cpu) * 1000)
    return wall, cpu


def ingest_with_and_without(
    root: Path, sessions: int, end_ns: int, live: bool, control: bool = False
) -> Rates:
    """Spans/s into a store with the dashboard's aggregates and indexes and into one
    without, fed the same batches in turns. ``control`` makes both stores "without",
    so the ratio shows what the benchmark itself varies by."""
    stores = {}
    for label in ("with", "without"):
        path = root / f"ingest-{label}.db"
        for old in root.glob(f"ingest-{label}.db*"):
            old.unlink()
        store = SQLiteStore(path)
        stores[label] = (store, store.create_project("default").id, Took())
    drop_schema(stores["without"][0])
    if control:
        drop_schema(stores["with"][0])
    spans = 0
    for i, batch in enumerate(batches(sessions, 2, end_ns, live=live)):
        spans += len(batch)
        order = ("with", "without") if i % 2 == 0 else ("without", "with")
        for label in order:
            store, project, took = stores[label]
            # Without the dashboard, ingest keeps no aggregates and no usage by model.
            kept = label == "with" and not control
            with nullcontext() if kept else upkeep_skipped():
                took.write(store, project, batch)
    for store, _, _ in stores.values():
        store.close()
    return Rates.of(spans, stores["with"][2], stores["without"][2])


class Took:
    """The wall-clock and CPU seconds (this thread's: both run in it) a store's batches
    took to prepare and to write."""

    def __init__(self) -> None:
        self.prepare_wall = self.prepare_cpu = self.write_wall = self.write_cpu = 0.0

    def write(self, store: SQLiteStore, project: int, batch: list[SpanRecord]) -> None:
        started, started_cpu = time.perf_counter(), time.thread_time()
        prepared = store.span_preparer(project)(project, batch)
        prepared_at, prepared_cpu = time.perf_counter(), time.thread_time()
        store.write_spans(project, batch, prepared)
        self.prepare_wall += prepared_at - started
        self.prepare_cpu += prepared_cpu - started_cpu
        self.write_wall += time.perf_counter() - prepared_at
        self.write_cpu += time.thread_time() - prepared_cpu

    def rates(self, spans: int) -> tuple[float, float, float, float]:
        """Spans/s: wall and CPU of preparing plus writing, then of the write alone."""
        return (
            spans / (self.prepare_wall + self.write_wall),
            spans / (self.prepare_cpu + self.write_cpu),
            spans / self.write_wall,
            spans / self.write_cpu,
        )


class Rates(NamedTuple):
    """Spans/s into the store with the dashboard and into the one without, each
    (wall, CPU) of preparing plus writing, then (wall, CPU) of the write alone."""

    with_dashboard: tuple[float, float, float, float]
    without: tuple[float, float, float, float]

    @classmethod
    def of(cls, spans: int, with_dashboard: Took, without: Took) -> Rates:
        return cls(with_dashboard.rates(spans), without.rates(spans))


def ingest_alone(
    root: Path, sessions: int, end_ns: int, live: bool, with_dashboard: bool
) -> tuple[float, float, float, float]:
    """``Took.rates`` of the same batches into one store, alone in this process
    (``--separate``): with the dashboard, or without it as in
    ``ingest_with_and_without``."""
    warm_up(root, end_ns)
    store = SQLiteStore(root / "ingest-alone.db")
    project = store.create_project("default").id
    if not with_dashboard:
        drop_schema(store)
    took = Took()
    spans = 0
    try:
        with nullcontext() if with_dashboard else upkeep_skipped():
            for batch in batches(sessions, 2, end_ns, live=live):
                spans += len(batch)
                took.write(store, project, batch)
    finally:
        store.close()
    return took.rates(spans)


def ingest_in_processes(
    sessions: int, end_ns: int, live: bool, with_first: bool, directory: Path | None
) -> Rates:
    """``ingest_with_and_without``'s rates, each store written alone in a process of its
    own, one after the other (``with_first``: the one with the dashboard first)."""
    rates: dict[str, tuple[float, float, float, float]] = {}
    for arm in ("with", "without") if with_first else ("without", "with"):
        command = [sys.executable, __file__, "--arm", arm, "--ingest-sessions", str(sessions)]
        command += ["--end-ns", str(end_ns)] + (["--live"] if live else [])
        command += ["--dir", str(directory)] if directory else []
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        wall, cpu, write_wall, write_cpu = map(float, out.split()[-4:])
        rates[arm] = (wall, cpu, write_wall, write_cpu)
    return Rates(rates["with"], rates["without"])


def warm_up(root: Path, end_ns: int) -> None:
    """One unmeasured write into a scratch store with the dashboard. A process's first
    write pays one-time costs (imports, first statements: ~35 ms of CPU, a second
    store's first write does not), and the pairs' first batch goes to the store with
    the dashboard first: without this, the first pair charged them to it (about 1 %)."""
    path = root / "ingest-warm-up.db"
    store = SQLiteStore(path)
    store.write_spans(store.create_project("default").id, next(batches(500, 99, end_ns)))
    store.close()
    for old in root.glob("ingest-warm-up.db*"):
        old.unlink()


def report(label: str, took: tuple[list[float], list[float]]) -> None:
    wall, cpu = took
    print(
        f"  {label:<42} wall p50 {statistics.median(wall):7.0f} ms"
        f"   CPU p50 {statistics.median(cpu):6.0f} ms (max {max(cpu):.0f})"
    )


def measure_queries(
    path: Path,
    sessions: int,
    runs: int,
    now: datetime,
    end_ns: int,
    score_share: float = 0.0,
    only: list[str] | None = None,
) -> None:
    """Fill a store with ``sessions`` sessions (unless ``path`` holds one already) and
    time each dashboard query on it (``only``: those whose label holds one of these)."""
    if path.exists():
        started = time.perf_counter()
        store = SQLiteStore(path)  # migrated, if a version before this one made it
        project = store.create_project("default").id  # the one stored
        print(f"opened {store.count_spans():,} spans in {time.perf_counter() - started:.1f} s")
    else:
        started_cpu = time.thread_time()
        store, project, took = fill(path, sessions, end_ns)
        print(
            f"filled {store.count_spans():,} spans ({sessions:,} sessions) in {took:.1f} s"
            f" (CPU {time.thread_time() - started_cpu:.2f} s)"
        )
    if score_share:
        started, started_cpu = time.perf_counter(), time.thread_time()
        count, writing = add_scores(store, project, sessions, end_ns, score_share)
        print(
            f"added {count:,} scores in {time.perf_counter() - started:.1f} s"
            f" (CPU {time.thread_time() - started_cpu:.2f} s, write_scores {writing:.2f} s)"
        )

    def in_month(**fields: Any) -> MetricsQuery:
        return MetricsQuery(start=now - timedelta(days=30), end=now, **fields)

    print(f"Store.metrics, {runs} runs each:")
    cases = {
        "30 days by day (the dashboard's default)": in_month(bucket="day"),
        "30 days by week": in_month(bucket="week"),
        "30 days by day, grouped by tag": in_month(bucket="day", group_by="tag"),
        "30 days by day, grouped by metadata": in_month(
            bucket="day", group_by="metadata", group_key="app_version"
        ),
        "30 days by day, one user": in_month(bucket="day", user_id="user-42"),
        "30 days by day, one tag": in_month(bucket="day", tag="beta"),
        "30 days by day, one metadata pair": in_month(
            bucket="day", metadata={"app_version": "2.0"}
        ),
        "30 days by hour": in_month(bucket="hour"),
        "7 days by day": MetricsQuery(start=now - timedelta(days=7), end=now, bucket="day"),
    }
    for label, query in cases.items():
        if only is None or any(part in label for part in only):
            report(label, time_metrics(store, project, query, runs))
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--score-share", type=float, default=0.0, help="share of sessions (and traces) scored"
    )
    parser.add_argument("--ingest-sessions", type=int, default=20_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument(
        "--ingest-only", action="store_true", help="skip the fill and the query times"
    )
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument(
        "--store",
        type=Path,
        help="time the queries on the store at this path, filled there first if missing"
        " (and kept); with --end-ns of its fill, to query and score the same days",
    )
    parser.add_argument(
        "--case", action="append", help="time only the queries whose label holds this"
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="both ingest stores without the dashboard: what a pair's ratio varies by alone",
    )
    parser.add_argument(
        "--separate",
        action="store_true",
        help="write each ingest store alone in a process of its own, with and without in turns",
    )
    parser.add_argument("--end-ns", type=int, help="the fill's last moment (default: now)")
    # A child of --separate: one store, its rates printed.
    parser.add_argument("--arm", choices=("with", "without"), help=argparse.SUPPRESS)
    parser.add_argument("--live", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    tune_garbage_collector()
    now = datetime.fromtimestamp(args.end_ns / S, UTC) if args.end_ns else datetime.now(UTC)
    end_ns = args.end_ns or int(now.timestamp()) * S
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        if args.arm:
            alone = ingest_alone(root, args.ingest_sessions, end_ns, args.live, args.arm == "with")
            print(" ".join(map(str, alone)))
            return
        if not args.ingest_only:
            measure_queries(
                args.store or root / "dashboard.db",
                args.sessions,
                args.runs,
                now,
                end_ns,
                args.score_share,
                args.case,
            )
        if args.pairs:
            warm_up(root, end_ns)
        for pair in range(args.pairs):
            for live in (False, True):
                if args.separate:
                    rates = ingest_in_processes(
                        args.ingest_sessions, end_ns, live, pair % 2 == 0, args.dir
                    )
                else:
                    rates = ingest_with_and_without(
                        root, args.ingest_sessions, end_ns, live, args.control
                    )
                how = "in processes of their own" if args.separate else "in turns"
                print(
                    f"ingest pair {pair + 1}, {'live' if live else 'backfill'},"
                    f" {args.ingest_sessions * 10:,} spans {how}, with / without the"
                    f" dashboard's aggregates:"
                )
                for label, first in (("prepared and written", 0), ("the write alone", 2)):
                    wall_with, cpu_with = rates.with_dashboard[first : first + 2]
                    wall_without, cpu_without = rates.without[first : first + 2]
                    print(
                        f"  {label + ':':<22} wall {wall_with:,.0f} / {wall_without:,.0f}"
                        f" spans/s ({wall_with / wall_without:.1%}), CPU {cpu_with:,.0f} /"
                        f" {cpu_without:,.0f} spans/s ({cpu_with / cpu_without:.1%})"
                    )


if __name__ == "__main__":
    main()
