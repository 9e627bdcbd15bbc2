"""Time ``runs_waiting`` on ClickHouse: the count of a project's runs not finished yet,
which the online sweep reads once per project with an online evaluator (and a request
that queues runs reads before queueing them), against ``evaluation_max_waiting_runs``.

    python tests/store/chdb_http.py --port 8631 --path /work/bench-data/x/ch &
    PYTHONPATH=<code>/src python bench/clickhouse_runs_waiting.py \\
        --url clickhouse://default:@127.0.0.1:8631 --fill --engine-pid <its pid>

With ``--fill``, one project queues ``--pending`` runs (in batches of 5,000), then a
tenth of them are claimed (running, a second version each) and half of those
released (a third); the database is kept, so each tree's code can be timed on it in
turn. Printed: p50 / p95 wall ms and the chDB engine's CPU ms per call.
"""

from __future__ import annotations

import argparse

from clickhouse_scale import timed

from threadline.server.evaluation.model import EvaluatorIn, RunRecord
from threadline.server.store import Store, open_store

LEASE_NS = 3600 * 1_000_000_000


def fill(store: Store, pending: int) -> int:
    project = store.create_project("waiting").id
    store.put_evaluator(
        project,
        EvaluatorIn.model_validate(
            {
                "name": "resolved",
                "prompt": "Resolved?",
                "judge": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
                "score": {"name": "resolved", "data_type": "boolean"},
                "online": False,
            }
        ),
    )
    runs = [
        RunRecord(f"run{i}", "resolved", "session", f"s{i}", f"s{i}", "manual", created_ns=i)
        for i in range(pending)
    ]
    for at in range(0, pending, 5000):
        store.add_runs(project, runs[at : at + 5000])
    claimed = store.claim_runs(pending // 10, LEASE_NS)
    store.release_runs(claimed[: len(claimed) // 2])
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="clickhouse://user:pw@host:port (no db)")
    parser.add_argument("--database", default="runs_waiting")
    parser.add_argument("--pending", type=int, default=50_000)
    parser.add_argument("--fill", action="store_true", help="fill the database first")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--engine-pid", type=int, help="the chDB endpoint's pid: its CPU too")
    args = parser.parse_args()
    store = open_store(f"{args.url.rstrip('/')}/{args.database}")
    try:
        if args.fill:
            fill(store, args.pending)
        project = next(p.id for p in store.list_projects() if p.name == "waiting")
        print(f"runs waiting: {store.runs_waiting(project):,}")
        timed("runs_waiting", lambda: store.runs_waiting(project), args.repeat, args.engine_pid)
    finally:
        store.close()


if __name__ == "__main__":
    main()
