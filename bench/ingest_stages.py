"""Where an ingest worker spends its CPU, per span, stage by stage, without HTTP.

    python bench/ingest_stages.py --spans 20480 --repeat 3
    python bench/ingest_stages.py --spans 10240 --corpus real   # corpus_otlp.py's chats

Runs the stages of ``ingest/prepare.py`` (what a worker process does with an export)
on the workload of ``workload.py`` (512 spans an export, as ``bench/server.py`` sends
them), with the SQLite store's preparer and its payload dictionary trained as in a
running server, and prints CPU microseconds a span for each stage: the wire count,
decode, the bounds check, normalise, redact, the store's rows, fresh rollups and search
documents; then pickling the worker's answer (in the worker) and loading it (in the
server process's slot thread). Each figure is the best of ``--repeat`` passes over every
export (process CPU time; the garbage collector tuned as in a worker). Run it with
``PYTHONPATH`` at each of two checkouts, alternating, to compare them. A benchmark,
not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus_otlp
import workload

from threadline.server.ingest.bounds import check_export, count_wire_spans
from threadline.server.ingest.decode import PROTOBUF, decode_request
from threadline.server.ingest.normalize import normalize_request
from threadline.server.ingest.prepare import Job, Prepared, prepare_export
from threadline.server.ingest.tuning import tune_garbage_collector
from threadline.server.model import SpanRecord
from threadline.server.redaction.redactor import redact_spans
from threadline.server.redaction.rules import RedactionRules
from threadline.server.settings import Settings
from threadline.server.store.base import SpanBatch
from threadline.server.store.sqlite import SQLiteStore, payloads, search
from threadline.server.store.sqlite.span_batch import SpanPreparer, fresh_traces


def trained_job(settings: Settings, first: bytes) -> Job:
    """A worker's job for a project whose payload dictionary the export ``first`` has
    trained, as in a server (the first export trains it)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "stages.db")
        project = store.create_project("bench").id
        trained = prepare_export(
            Job(settings, project, RedactionRules(), store.span_preparer()), first, PROTOBUF, None
        )
        assert isinstance(trained, Prepared)
        store.write_span_batches([SpanBatch(project, trained.normalized.spans, trained.for_store)])
        preparer = store.span_preparer()
        store.close()
    return Job(settings, project, RedactionRules(), preparer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20_480)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--flavour", choices=workload.FLAVOURS, default="threadline")
    parser.add_argument(
        "--corpus",
        choices=("workload", "real"),
        default="workload",
        help="workload.py's spans (--flavour) or corpus_otlp.py's real chats",
    )
    args = parser.parse_args()
    if args.corpus == "real":
        bodies = [b.body for b in corpus_otlp.batches(args.spans, 512)]
    else:
        bodies = [b.body for b in workload.batches(args.spans, 512, flavour=args.flavour)]
    tune_garbage_collector()  # as a worker does
    settings = Settings()
    job = trained_job(settings, bodies[0])
    preparer = job.store_preparer
    assert isinstance(preparer, SpanPreparer)
    spans = sum(len(normalize_request(decode_request(b, PROTOBUF)).spans) for b in bodies)

    requests = [decode_request(b, PROTOBUF) for b in bodies]
    records = [normalize_request(r).spans for r in requests]
    answers = [prepare_export(job, b, PROTOBUF, None) for b in bodies]
    pickled = [pickle.dumps(a, protocol=pickle.HIGHEST_PROTOCOL) for a in answers]
    limit = settings.max_spans_per_export

    # Redaction and the rows part change or read the spans and answer nothing.
    def redact() -> None:
        for s in records:
            redact_spans(s, job.rules)

    def rows() -> None:
        for s in records:
            _rows(preparer, job.project_id, s)

    stages: dict[str, Callable[[], object]] = {
        "count": lambda: [count_wire_spans(b, limit) for b in bodies],
        "decode": lambda: [decode_request(b, PROTOBUF) for b in bodies],
        "check": lambda: [check_export(r, settings) for r in requests],
        "normalize": lambda: [normalize_request(r) for r in requests],
        "redact": redact,
        "rows": rows,
        "fresh": lambda: [fresh_traces(job.project_id, s) for s in records],
        "documents": lambda: [search.documents(search.by_trace(s)) for s in records],
        "whole job": lambda: [prepare_export(job, b, PROTOBUF, None) for b in bodies],
        "pickle": lambda: [pickle.dumps(a, protocol=pickle.HIGHEST_PROTOCOL) for a in answers],
        "load": lambda: [pickle.loads(p) for p in pickled],
    }
    for name, work in stages.items():
        took = _best(args.repeat, work)
        print(f"{name:10s} {took / spans * 1e6:6.1f} µs/span")
    print(f"answer     {sum(map(len, pickled)) / spans:,.0f} bytes a span")


def _rows(preparer: SpanPreparer, project: int, spans: list[SpanRecord]) -> None:
    """The rows part of ``SpanPreparer``: encode and pack each span."""
    from threadline.server.jsontext import dumps
    from threadline.server.store import rows as table_rows
    from threadline.server.store.sqlite.span_batch import _dictionary

    packer = payloads.Packer(_dictionary(preparer.dictionary))
    for span in spans:
        table_rows.span_row(project, span, dumps(span.resource), packer.pack)


def _best(repeat: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


if __name__ == "__main__":
    main()
