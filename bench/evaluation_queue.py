"""Benchmark the evaluation queue's claim: its cost under a flood, and its order.

    python bench/evaluation_queue.py                       # SQLite, 100,000 runs waiting
    python bench/evaluation_queue.py --pending 100000 --finished 200000 --projects 50
    python bench/evaluation_queue.py --store chdb --pending 2000 --finished 20000

One project queues ``--pending`` runs (a flood), ``--projects`` others one run each,
after ``--finished`` runs already done (a queue's history). Then ``claim_runs`` takes
4 runs (a runner's default concurrency) and ``release_runs`` puts them back, ``--rounds``
times; printed: the median and 90th percentile of a claim with its release, and of the
release alone, how many of the first claim were the flood's, a poll of an empty queue
(what every runner does twice a second when there is nothing to judge), and the list of
the flood's pending runs (``list_runs`` with ``status=pending``, a page of 50). Compare
trees by running it with each one's ``src`` on ``PYTHONPATH`` (the store's own schema: a
tree before migration 0024 has the old index). ``--store chdb``: the ClickHouse store on
the chDB endpoint of the tests (``tests/store/chdb_http.py``), the finished runs written
as finished versions in bulk.
It is a benchmark, not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from threadline.server.evaluation.model import EvaluatorIn, RunQuery, RunRecord
from threadline.server.store import open_store

LEASE_NS = 200 * 1_000_000_000


def _evaluator() -> EvaluatorIn:
    return EvaluatorIn.model_validate(
        {
            "name": "resolved",
            "prompt": "Resolved?",
            "judge": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
            "score": {"name": "resolved", "data_type": "boolean"},
            "online": False,
        }
    )


def _runs(prefix: str, count: int, first_ns: int) -> list[RunRecord]:
    return [
        RunRecord(
            f"{prefix}{i}",
            "resolved",
            "session",
            f"s{i}",
            f"s{i}",
            "manual",
            created_ns=first_ns + i,
        )
        for i in range(count)
    ]


def _finish_all(store, runs: list[RunRecord]) -> None:
    """Mark claimed runs done in bulk (one by one, 100,000 finishes are slow)."""
    if hasattr(store, "_transaction"):
        with store._transaction() as conn:
            conn.executemany(
                "UPDATE evaluation_runs SET status = 'done' WHERE project_id = ? AND id = ?",
                [(r.project_id, r.id) for r in runs],
            )
        return
    from threadline.server.store.clickhouse.evaluations import _RUN_INSERT, FINISHED, _run_row

    for r in runs:
        r.status = "done"
    store._put("evaluation_runs", [_run_row(r, "", FINISHED + 1) for r in runs], _RUN_INSERT)


def _open(kind: str, root: Path):
    if kind == "sqlite":
        return open_store(f"sqlite://{root / 'queue.db'}")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.store.chdb_http import database_name, shared_server

    return open_store(shared_server().url(database_name(root.name)))


def _timed(call, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--finished", type=int, default=100_000)
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--dir", default=None, help="where the database goes (a temporary one)")
    parser.add_argument("--store", choices=("sqlite", "chdb"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as root:
        store = _open(args.store, Path(root))
        try:
            flood = store.create_project("flood").id
            store.put_evaluator(flood, _evaluator())
            history = _runs("old", args.finished, 0)
            for i in range(0, len(history), 5000):
                store.add_runs(flood, history[i : i + 5000])
            for claimed in iter(lambda: store.claim_runs(5000, LEASE_NS), []):
                _finish_all(store, claimed)
            empty = _timed(lambda: store.claim_runs(4, LEASE_NS), args.rounds)
            runs = _runs("flood", args.pending, 10**18)
            for i in range(0, len(runs), 5000):
                store.add_runs(flood, runs[i : i + 5000])
            others = []
            for p in range(args.projects):
                project = store.create_project(f"other{p}").id
                store.put_evaluator(project, _evaluator())
                store.add_runs(project, _runs("other", 1, 2 * 10**18 + p))
                others.append(project)
            first = store.claim_runs(4, LEASE_NS)
            of_flood = sum(r.project_id == flood for r in first)
            store.release_runs(first)

            releases: list[float] = []

            def claim_and_release() -> None:
                claimed = store.claim_runs(4, LEASE_NS)
                started = time.perf_counter()
                store.release_runs(claimed)
                releases.append((time.perf_counter() - started) * 1000)

            full = _timed(claim_and_release, args.rounds)
            pending = RunQuery(status="pending", limit=50)
            listed = _timed(lambda: store.list_runs(flood, pending), args.rounds)
        finally:
            store.close()
    q = lambda xs: statistics.quantiles(xs, n=10)[-1]  # noqa: E731
    print(
        f"{args.store}: pending {args.pending:,} (one project) + {args.projects} projects × 1,"
        f" {args.finished:,} finished; {args.rounds} rounds"
    )
    print(f"claim 4 + release: median {statistics.median(full):.2f} ms, p90 {q(full):.2f} ms")
    print(f"release alone: median {statistics.median(releases):.2f} ms, p90 {q(releases):.2f} ms")
    print(f"first claim: {of_flood} of 4 runs from the flooding project")
    print(f"list pending: median {statistics.median(listed):.2f} ms, p90 {q(listed):.2f} ms")
    print(
        f"poll of an empty queue: median {statistics.median(empty):.3f} ms, p90 {q(empty):.3f} ms"
    )


if __name__ == "__main__":
    main()
