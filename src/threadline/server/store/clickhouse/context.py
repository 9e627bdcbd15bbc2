"""Context use in ClickHouse (migration 0008): each export adds, per trace, the largest
share of its model's context window one of its spans in the export filled
(``context_window``, in Python: the window is genai-prices' data), to ``trace_context``,
an ``AggregatingMergeTree`` that keeps the max. Retries and later spans only raise it to
what the whole trace's spans give, as ``store/rollups.py`` takes the max over all of
them. Reads join it to the merged trace rollups (``queries.latest_traces``), and a
session's peak is the max over its traces, as on SQLite. Each row carries the end of its
trace's latest span in the export (``end_ns``, merged by max) for retention's TTL, so
the row expires with its trace's other rows, and the start of its earliest
(``start_ns``): a view (migration 0021) copies the row into the trace's packed parts, in
the partition of the export's other part of the trace, where reads by id find it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from threadline.server.context_window import context_use
from threadline.server.model import SpanRecord

TABLE = "trace_context"
COLUMNS = ["project_id", "trace_id", "context_use", "start_ns", "end_ns"]


def rows(project_id: int, spans: Sequence[SpanRecord]) -> list[list[Any]]:
    """One row per trace of ``spans`` with a known context use."""
    fullest: dict[str, float] = {}
    starts: dict[str, int] = {}
    ends: dict[str, int] = {}
    for span in spans:
        if span.start_ns < starts.get(span.trace_id, span.start_ns + 1):
            starts[span.trace_id] = span.start_ns
        if span.end_ns > ends.get(span.trace_id, -1):
            ends[span.trace_id] = span.end_ns
        if span.input_tokens and span.model:
            use = context_use(span.model, span.input_tokens)
            if use is not None and use > fullest.get(span.trace_id, -1.0):
                fullest[span.trace_id] = use
    return [
        [project_id, trace_id, use, starts[trace_id], ends[trace_id]]
        for trace_id, use in fullest.items()
    ]
