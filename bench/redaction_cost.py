"""What redaction costs the ingest thread, measured in one process, interleaved.

    python bench/redaction_cost.py --spans 50000

The work of the server's ingest thread on each export (``ingest/pipeline.py``): OTLP
protobuf decoded, spans normalised, written to SQLite (``Store.write_spans``), once into
a store without rules (A) and once into a store whose project has every built-in
detector and one pattern of the user's (B), export by export, alternating which goes
first. Interleaving the two at the granularity of one export keeps a shared machine's
changing load out of the ratio, which server runs back to back (``data_rules.py``) do
not manage on a loaded machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from threadline.server.ingest.normalize import normalize_spans, span_items
from threadline.server.redaction.redactor import redact_spans
from threadline.server.redaction.rules import NO_RULES, parse
from threadline.server.store.sqlite import SQLiteStore

RULES = parse(["email", "phone", "card", "secret"], [("ticket", r"TCK-\d{4,}")])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=50_000)
    args = parser.parse_args()
    bodies = [b.body for b in workload.batches(args.spans, 512, start_ns=time.time_ns())]
    with tempfile.TemporaryDirectory() as tmp:
        stores = {arm: SQLiteStore(Path(tmp) / f"{arm}.db") for arm in "AB"}
        projects = {arm: stores[arm].create_project("p").id for arm in "AB"}
        rules = {"A": NO_RULES, "B": RULES}
        seconds = {"A": 0.0, "B": 0.0}
        redacting = 0.0
        for n, body in enumerate(bodies):
            for arm in "AB" if n % 2 else "BA":
                began = time.perf_counter()
                spans = normalize_spans(
                    span_items(ExportTraceServiceRequest.FromString(body))
                ).spans
                redaction_began = time.perf_counter()
                redact_spans(spans, rules[arm])
                if arm == "B":
                    redacting += time.perf_counter() - redaction_began
                stores[arm].write_spans(projects[arm], spans)
                seconds[arm] += time.perf_counter() - began
        for store in stores.values():
            store.close()
    rate = {arm: args.spans / seconds[arm] for arm in "AB"}
    print(
        f"A (no rules): {rate['A']:,.0f} spans/s; B (4 detectors + 1 pattern): "
        f"{rate['B']:,.0f} spans/s; B/A = {rate['B'] / rate['A']:.1%}; redaction itself "
        f"{redacting / args.spans * 1e6:.1f} us a span"
    )


if __name__ == "__main__":
    main()
