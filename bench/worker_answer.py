"""What a worker's answer costs to pickle (in the worker) and to load (in the server).

    python bench/worker_answer.py --spans 10240 --repeat 5

Prepares the workload's exports as a worker does (``ingest/prepare.py`` with the SQLite
store's preparer, payload dictionary trained), then times, per span, pickling and
loading every answer (``Prepared``: the records and the store's rows, rollups and search
documents) and the span records alone, taking each figure's best of ``--repeat``
(process CPU time). Run it with ``PYTHONPATH`` at each of two checkouts, alternating,
to compare them. A benchmark, not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload

from threadline.server.ingest.decode import PROTOBUF
from threadline.server.ingest.prepare import Job, Prepared, prepare_export
from threadline.server.redaction.rules import RedactionRules
from threadline.server.settings import Settings
from threadline.server.store.base import SpanBatch
from threadline.server.store.sqlite import SQLiteStore


def _best(repeat: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def _dump_all(values: Sequence[object]) -> list[bytes]:
    return [pickle.dumps(each, protocol=5) for each in values]


def _load_all(pickled: list[bytes]) -> list[object]:
    return [pickle.loads(each) for each in pickled]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=10_240)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bodies = [batch.body for batch in workload.batches(args.spans, 512)]
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "answer.db")
        project = store.create_project("bench").id
        first = prepare_export(
            Job(Settings(), project, RedactionRules(), store.span_preparer()),
            bodies[0],
            PROTOBUF,
            None,
        )
        assert isinstance(first, Prepared)
        # The first export trains the payload dictionary, as in a server.
        store.write_span_batches([SpanBatch(project, first.normalized.spans, first.for_store)])
        job = Job(Settings(), project, RedactionRules(), store.span_preparer())
        answers = [prepare_export(job, body, PROTOBUF, None) for body in bodies[1:]]
        store.close()
    spans = sum(len(a.normalized.spans) for a in answers if isinstance(a, Prepared))
    records = [a.normalized.spans for a in answers if isinstance(a, Prepared)]
    what: Sequence[object]
    for label, what in (("answer", answers), ("records", records)):
        pickled = [pickle.dumps(each, protocol=pickle.HIGHEST_PROTOCOL) for each in what]
        dump = _best(args.repeat, partial(_dump_all, what))
        load = _best(args.repeat, partial(_load_all, pickled))
        print(
            f"{label:8s} pickle {dump / spans * 1e6:5.1f} µs, load {load / spans * 1e6:5.1f} µs,"
            f" {sum(map(len, pickled)) / spans:,.0f} bytes a span"
        )


if __name__ == "__main__":
    main()
