"""Writes into a large store whose project has scores: what a batch of new sessions and
a score write cost the writing thread. Run once with each tree's ``src`` on the path, in
turns, on one copy of a store (each run adds its own sessions and scores to it).

    PYTHONPATH=<tree>/src python bench/scored_writes.py --db /tmp/x/threadline.db \
        --seed 1 [--batches 20]

The store is one ``bench/dashboard.py --score-share 0.3`` made (or a copy of the kept
1M-span base given scores by ``dashboard.add_scores``). Each run writes ``--batches``
backfill batches of 51 new sessions (``dashboard.batches``, 510 spans each; ``--seed``
different in each run, so that every run's sessions are new), then, per batch, a
numeric score on each of 40 of the sessions it wrote. It prints the thread CPU µs a span
of ``write_spans`` and ms a call of ``write_scores``, medians over the batches.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

from threadline.server.ingest.tuning import tune_garbage_collector
from threadline.server.model import ScoreRecord
from threadline.server.store.sqlite import SQLiteStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dashboard import batches


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    tune_garbage_collector()
    store = SQLiteStore(args.db)
    project = next(p.id for p in store.list_projects() if p.name == "default")
    end_ns = 1796662652000000000  # the kept base's end (its .json)
    rng = random.Random(args.seed)
    spans_us: list[float] = []
    scores_ms: list[float] = []
    # Seeds above 1,000 keep clear of the base's sessions (seed 1) and of other runs'.
    for n, batch in enumerate(batches(51 * args.batches, 1000 + args.seed, end_ns, per_batch=51)):
        started = time.thread_time()
        store.write_spans(project, batch)
        spans_us.append((time.thread_time() - started) / len(batch) * 1e6)
        sessions = sorted({span.session_id for span in batch if span.session_id})
        records = [
            ScoreRecord(
                id=f"{rng.getrandbits(128):032x}",
                name="quality",
                data_type="numeric",
                value=float(rng.randint(1, 5)),
                label=None,
                session_id=session_id,
                trace_id=None,
                span_id=None,
                source="api",
                author=None,
                comment=None,
                created_ns=end_ns,
            )
            for session_id in sessions[:40]
        ]
        started = time.thread_time()
        store.write_scores(project, records)
        scores_ms.append((time.thread_time() - started) * 1e3)
        if n + 1 >= args.batches:
            break
    store.close()
    print(
        f"seed {args.seed}, load {os.getloadavg()[0]:.1f}: write_spans"
        f" {statistics.median(spans_us):.1f} µs a span (batches {len(spans_us)},"
        f" {min(spans_us):.1f}-{max(spans_us):.1f}); write_scores of 40 sessions"
        f" {statistics.median(scores_ms):.2f} ms ({min(scores_ms):.2f}-{max(scores_ms):.2f})"
    )


if __name__ == "__main__":
    main()
