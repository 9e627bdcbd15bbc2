"""What an export costs as the session it writes into grows: one conversation, turn
after turn, into a fresh SQLite store.

    python bench/long_sessions.py                       # lengths 50 ... 10,000 traces
    python bench/long_sessions.py --lengths 100,1000

Each export holds 50 new turns (traces of the workload's shape, 500 spans) of the
same session. The script prints the time ``Store.write_spans`` took for the exports
that brought the session to each length (the median of three), on one thread and
without HTTP, so that the figure is the store's alone.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

from threadline.server.ingest.normalize import normalize_request
from threadline.server.ingest.tuning import tune_garbage_collector
from threadline.server.store.sqlite import SQLiteStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload

TURNS_PER_EXPORT = 50
_MINUTE_NS = 60 * 10**9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lengths", default="50,500,2500,10000", help="session lengths in traces, comma-separated"
    )
    args = parser.parse_args()
    lengths = sorted({int(n) for n in args.lengths.split(",")})
    rng = random.Random(3)
    clock = workload.START_NS
    tune_garbage_collector()  # as the server does
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "long.db")
        project = store.create_project("bench").id
        took: dict[int, list[float]] = {n: [] for n in lengths}
        held = 0
        while held < lengths[-1] + 2 * TURNS_PER_EXPORT:
            spans = []
            for _ in range(TURNS_PER_EXPORT):
                spans += workload.trace_spans(rng, "long-session", "user-1", clock)
                clock += _MINUTE_NS
            request = ExportTraceServiceRequest(
                resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
            )
            records = normalize_request(request).spans
            started = time.perf_counter()
            store.write_spans(project, records)
            elapsed = time.perf_counter() - started
            held += TURNS_PER_EXPORT
            for n in lengths:
                # The export that reached n, and the two after it.
                if n <= held < n + 3 * TURNS_PER_EXPORT:
                    took[n].append(elapsed)
        store.close()
    print(f"{'traces in the session':>22}  ms per export of {TURNS_PER_EXPORT} new traces")
    for n in lengths:
        print(f"{n:>22,}  {statistics.median(took[n]) * 1000:8.1f}")


if __name__ == "__main__":
    main()
