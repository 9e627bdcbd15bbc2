"""A score write into a busy hour: what keeping the dashboard's score sums costs a write.

    python bench/score_hours.py --rollups 4000 --singles 400 --rounds 3

Fills a SQLite store with ``--rollups`` traces started in one hour, each scored once
with a numeric ``quality`` (non-dyadic values), so the hour holds that many rollups of
the name; then writes ``--singles`` scores one per ``Store.write_scores`` call, each a
new score on one of those traces (its rollup replaced in the busy hour), and then the
same number again in batches of ``--batch``. Prints, per round, the CPU and wall time of
one write (p50 and mean, µs) and of a batched score. The store calls only: no server.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fillers
from fillers import T0

from threadline.server.model import ScoreRecord
from threadline.server.store.sqlite import SQLiteStore

HOUR_NS = 3600 * 10**9


def quality(rng: random.Random, trace_id: str, at_ns: int) -> ScoreRecord:
    return ScoreRecord(
        id=uuid.UUID(int=rng.getrandbits(128)).hex,
        name="quality",
        data_type="numeric",
        value=round(rng.random() * 5, 3) + 1 / 3,
        label=None,
        session_id=None,
        trace_id=trace_id,
        span_id=None,
        source="api",
        author=None,
        comment=None,
        created_ns=at_ns,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rollups", type=int, default=4000)
    parser.add_argument("--singles", type=int, default=400)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(7)
    start = T0 - T0 % HOUR_NS
    step = HOUR_NS // (args.rollups + 1)
    traces = [fillers.trace_id(rng) for _ in range(args.rollups)]
    spans = [
        fillers.turn_root(t, fillers.span_id(rng), start + i * step, f"s-{i}", "u", "{}", "{}")
        for i, t in enumerate(traces)
    ]
    with tempfile.TemporaryDirectory(prefix="threadline-score-hours-") as tmp:
        store = SQLiteStore(Path(tmp) / "threadline.db")
        project = store.create_project("default").id
        store.write_spans(project, spans)
        at = start
        for i in range(0, len(traces), 500):
            store.write_scores(project, [quality(rng, t, at) for t in traces[i : i + 500]])
        for round_ in range(args.rounds):
            cpu, wall = [], []
            for _ in range(args.singles):
                at += 1000
                record = quality(rng, rng.choice(traces), at)
                c0, w0 = time.process_time_ns(), time.perf_counter_ns()
                store.write_scores(project, [record])
                cpu.append((time.process_time_ns() - c0) / 1000)
                wall.append((time.perf_counter_ns() - w0) / 1000)
            c0, w0 = time.process_time_ns(), time.perf_counter_ns()
            for _ in range(args.singles // args.batch):
                at += 1000
                store.write_scores(
                    project, [quality(rng, rng.choice(traces), at) for _ in range(args.batch)]
                )
            batched = args.singles // args.batch * args.batch
            batch_cpu = (time.process_time_ns() - c0) / 1000 / batched
            batch_wall = (time.perf_counter_ns() - w0) / 1000 / batched
            print(
                f"round {round_}: one score a write, CPU p50 {statistics.median(cpu):.0f}"
                f" mean {statistics.fmean(cpu):.0f} µs, wall p50 {statistics.median(wall):.0f}"
                f" mean {statistics.fmean(wall):.0f} µs; in batches of {args.batch}:"
                f" CPU {batch_cpu:.1f} wall {batch_wall:.1f} µs a score"
            )
        store.close()


if __name__ == "__main__":
    main()
