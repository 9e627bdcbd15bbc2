"""What the SQLite store makes of a batch of spans before its write transaction.

The rows of the spans (JSON, payloads packed with zstd, which payloads are JSON to
pass through as stored: json_payloads.py), each trace rolled up as if
none of it was stored before, and the documents of the search index: pure work on the
records, most of a write's CPU. ``SpanPreparer`` does it wherever it is called: the
ingest pipeline calls it in a worker process (``ingest/prepare.py``), so the writer
thread of the server process only runs the transaction; ``write_spans`` calls it
itself when given none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import zstandard

from threadline.server.jsontext import dumps
from threadline.server.model import SpanRecord
from threadline.server.store import rows as table_rows
from threadline.server.store.columns import SPANS
from threadline.server.store.rollups import TraceRollup, roll_up_trace
from threadline.server.store.sqlite import json_payloads, metric_upkeep, payloads, search
from threadline.server.store.sqlite import rows as schema


class FreshTrace(NamedTuple):
    """A trace rolled up from the records of one batch as if none of it was stored
    before, its ``traces`` row, and those records (the first copy of each span)."""

    rollup: TraceRollup
    row: list[Any]
    spans: list[SpanRecord]


@dataclass
class PreparedSpans:
    """A batch of spans made ready for ``SpanWrites.write_spans``."""

    project_id: int
    rows: dict[str, list[list[Any]]]  # INSERT_SPAN rows but the trace key, by trace id
    fresh: dict[str, FreshTrace]
    documents: search.Documents  # the search index's, one per trace
    # Payloads packed without a dictionary, to train one (None: packed with one).
    samples: list[bytes] | None
    # What the fresh traces add to the dashboard's aggregates if none was stored
    # before, and their usage by model (metric_upkeep.py).
    aggregates: metric_upkeep.NewTraces


@dataclass(frozen=True)
class SpanPreparer:
    """Prepares batches as the store that made it would (picklable: it is sent to the
    worker processes with each job). ``dictionary``: the bytes of the payload dictionary
    to pack with, None for none."""

    dictionary: bytes | None

    def __call__(self, project_id: int, spans: Sequence[SpanRecord]) -> PreparedSpans:
        packer = payloads.Packer(_dictionary(self.dictionary))
        # The spans of one OTLP resource share one resource dict: encode it once.
        resources: dict[int, str] = {}
        rows: dict[str, list[list[Any]]] = defaultdict(list)
        for span in spans:
            resource = resources.get(id(span.resource))
            if resource is None:
                resource = resources[id(span.resource)] = dumps(span.resource)
            row = table_rows.span_row(project_id, span, resource, packer.pack)
            row.append(json_payloads.flags(row[_INPUT], row[_OUTPUT]))
            rows[span.trace_id].append(row)
        fresh = fresh_traces(project_id, spans)
        return PreparedSpans(
            project_id,
            dict(rows),
            fresh,
            search.documents([trace.spans for trace in fresh.values()]),
            packer.samples,
            new_aggregates(fresh),
        )


_INPUT, _OUTPUT = SPANS.position("input"), SPANS.position("output")


def new_aggregates(fresh: dict[str, FreshTrace]) -> metric_upkeep.NewTraces:
    """What the ``fresh`` traces add to the dashboard's aggregates as new to the store."""
    return metric_upkeep.new_traces((trace.rollup, trace.spans) for trace in fresh.values())


def restore_payloads(
    spans: Sequence[SpanRecord],
    rows: dict[str, list[list[Any]]],
    trace_ids: Collection[str],
    unpack: table_rows.Unpack,
) -> None:
    """Set the input and output of the records of ``trace_ids`` back from their rows
    (``PreparedSpans.rows``, made from ``spans`` in this order), where they may have
    been left out (``ingest/writer_records.py``): for the few traces whose rollup or
    search document the write transaction makes again from the records."""
    at = dict.fromkeys(trace_ids, 0)
    for span in spans:
        i = at.get(span.trace_id)
        if i is None:
            continue
        at[span.trace_id] = i + 1
        row = rows[span.trace_id][i]
        span.input, span.output = unpack(row[_INPUT]), unpack(row[_OUTPUT])


_dictionaries: dict[bytes, payloads.Dictionary] = {}


def _dictionary(data: bytes | None) -> payloads.Dictionary | None:
    """The dictionary of ``data``, made and precomputed once per process."""
    if data is None:
        return None
    dictionary = _dictionaries.get(data)
    if dictionary is None:
        _dictionaries.clear()  # the store packs with its newest one only
        dictionary = _dictionaries[data] = payloads.prepared(zstandard.ZstdCompressionDict(data))
    return dictionary


def fresh_traces(project_id: int, spans: Sequence[SpanRecord]) -> dict[str, FreshTrace]:
    """Each trace of ``spans`` rolled up from these records as if none of it was stored
    before (the usual case: a trace's spans mostly arrive in one export). The first
    copy of a span wins, as the insert's does."""
    by_trace: dict[str, dict[str, SpanRecord]] = defaultdict(dict)
    for span in spans:
        by_trace[span.trace_id].setdefault(span.span_id, span)
    fresh = {}
    for trace_id, by_id in by_trace.items():
        records = list(by_id.values())
        rollup = roll_up_trace(trace_id, records)
        fresh[trace_id] = FreshTrace(rollup, schema.trace_row(project_id, rollup), records)
    return fresh
