"""Where an export's time goes in a server, stage by stage, from a timeline of every export.

    THREADLINE_BENCH_HOOKS=export_timeline THREADLINE_TIMELINE=/tmp/t.jsonl \
    PYTHONPATH=bench/hooks:src python bench/server.py --spans 100000 --workers 2
    python bench/export_timeline.py /tmp/t.jsonl

The ``export_timeline`` hook of ``bench/hooks/sitecustomize.py`` (``bench/hooks`` on the
server's ``PYTHONPATH``, ``THREADLINE_TIMELINE`` naming a file) writes one line an export,
beside any other hook (``THREADLINE_BENCH_HOOKS=export_timeline,without_search_index``: the
timeline of a server without the search index); this prints, for each
stage, the median, p90, p99 and mean in ms over the exports of the busiest stretch (the
first export's start to the last one's end, a steady run's exports included if the file
holds them), and how busy the writer was: the share of that stretch it spent in
transactions, its CPU in them, and how many exports were in the workers when each
transaction began (what a writer that waited could have taken).
A benchmark, not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

STAGES = [
    ("receive the body", "start", "export"),
    ("to a worker (queues, send)", "export", "worker_in"),
    ("in the worker", "worker_in", "worker_out"),
    ("back to the event loop", "worker_out", "prepared"),
    ("to the writer, waiting", "to_writer", "commit_start"),
    ("in the transaction", "commit_start", "commit_end"),
    ("back to the event loop", "commit_end", "committed"),
    ("answer", "committed", "end"),
    ("whole", "start", "end"),
]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("timeline", type=Path)
    parser.add_argument("--skip", type=int, default=0, help="leave out the first N exports")
    parser.add_argument("--last", type=int, default=0, help="only the last N exports")
    args = parser.parse_args()
    records = [json.loads(line) for line in args.timeline.read_text().splitlines()]
    records = [r for r in records if "commit_end" in r]
    records.sort(key=lambda r: r["start"])
    records = records[args.skip :]
    if args.last:
        records = records[-args.last :]
    first, last = min(r["start"] for r in records), max(r["end"] for r in records)
    wall = last - first
    print(f"{len(records)} exports over {wall:.2f} s")
    print(f"{'stage':30s} {'p50':>7s} {'p90':>7s} {'p99':>7s} {'mean':>7s}  (ms)")
    for name, a, b in STAGES:
        times = [(r[b] - r[a]) * 1e3 for r in records if a in r and b in r]
        if times:
            print(
                f"{name:30s} {quantile(times, 0.5):7.1f} {quantile(times, 0.9):7.1f}"
                f" {quantile(times, 0.99):7.1f} {statistics.fmean(times):7.1f}"
            )
    jobs = [r for r in records if "worker_cpu" in r]
    job_wall = sum(r["worker_out"] - r["worker_in"] for r in jobs)
    job_cpu = sum(r["worker_cpu"] for r in jobs)
    job_runq = sum(r["worker_runq"] for r in jobs)
    print(
        f"a worker's job: CPU p50 {quantile([r['worker_cpu'] * 1e3 for r in jobs], 0.5):.1f} ms;"
        f" of its wall time on a core {job_cpu / job_wall:.0%}, waiting for one"
        f" {job_runq / job_wall:.0%}, neither {1 - (job_cpu + job_runq) / job_wall:.0%}"
    )
    transactions = {
        (r["commit_start"], r["commit_end"], r["commit_cpu"], r["commit_runq"], r["group"])
        for r in records
    }
    busy = sum(t[1] - t[0] for t in transactions)
    cpu = sum(t[2] for t in transactions)
    runq = sum(t[3] for t in transactions)
    in_worker = [
        sum(1 for r in records if r["export"] <= t[0] < r["prepared"]) for t in transactions
    ]
    print(
        f"writer: {len(transactions)} transactions, {len(records) / len(transactions):.2f}"
        f" exports each; in transactions {busy / wall:.1%} of the time; of that on a core"
        f" {cpu / busy:.0%}, waiting for one {runq / busy:.0%}, neither (the GIL, I/O)"
        f" {1 - (cpu + runq) / busy:.0%}"
    )
    print(
        "exports in the workers as a transaction began: "
        + ", ".join(f"{n}: {in_worker.count(n)}" for n in sorted(set(in_worker)))
    )
    workers_busy = sum(r["worker_out"] - r["worker_in"] for r in records if "worker_in" in r)
    print(f"workers: in jobs {workers_busy / wall:.2f} workers' worth of the time")


if __name__ == "__main__":
    main()
