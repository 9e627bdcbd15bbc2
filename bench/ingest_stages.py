"""Where ingest spends its time, per span, on one thread and without HTTP.

    python bench/ingest_stages.py --spans 10000

Runs the stages of ``POST /v1/traces`` on the workload of ``workload.py`` against a
fresh SQLite store and prints microseconds per span for each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload

from threadline.server.ingest.decode import PROTOBUF, decode_request
from threadline.server.ingest.normalize import normalize_request
from threadline.server.ingest.tuning import tune_garbage_collector
from threadline.server.jsontext import dumps
from threadline.server.store.rows import span_row
from threadline.server.store.sqlite import SQLiteStore
from threadline.server.store.sqlite import rows as schema
from threadline.server.store.sqlite.span_batch import fresh_traces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=10_000)
    args = parser.parse_args()
    bodies = [batch.body for batch in workload.batches(args.spans)]
    tune_garbage_collector()  # as the server does
    stages = dict.fromkeys(("decode", "normalize", "rows", "insert", "rollups", "commit"), 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "stages.db")
        project = store.create_project("bench").id
        trained = 0.0
        for body in bodies:
            t0 = time.perf_counter()
            request = decode_request(body, PROTOBUF)
            t1 = time.perf_counter()
            records = normalize_request(request).spans
            t2 = time.perf_counter()
            packer = store._payloads.packer()
            rows = [span_row(project, r, dumps(r.resource), packer.pack) for r in records]
            fresh = fresh_traces(project, records)
            t3 = time.perf_counter()
            # The body of SQLiteStore.write_spans, timed step by step.
            with store._write_lock:
                conn = store._writer
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(schema.INSERT_SPAN, rows)
                t4 = time.perf_counter()
                store._refresh_rollups(conn, project, fresh, set(fresh))
                t5 = time.perf_counter()
                conn.execute("COMMIT")
            t6 = time.perf_counter()
            if packer.samples:  # as write_spans does: a payload dictionary, once
                store._payloads.learn(packer.samples)
                trained += time.perf_counter() - t6
            for name, took in zip(
                stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True
            ):
                stages[name] += took
        store.close()
    for name, took in stages.items():
        print(f"{name:10s} {took / args.spans * 1e6:6.1f} µs/span")
    print(f"{'total':10s} {sum(stages.values()) / args.spans * 1e6:6.1f} µs/span")
    print(f"(and {trained:.2f} s once, to train the payload dictionary)")


if __name__ == "__main__":
    main()
