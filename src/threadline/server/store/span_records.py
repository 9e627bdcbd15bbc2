"""Stored span rows back to ``SpanRecord``s, for copying spans between stores.

Both backends keep a span in the same columns (JSON text for attributes, events,
resource, metadata and tags; the attribute an input or output came from stored once,
as the input or output); a store that keeps payloads packed (SQLite's zstd frames)
unpacks them before calling ``span_record``. ``threadline migrate`` reads them with
``COLUMNS`` and hands the records to the other store's ``write_spans``.
"""

from __future__ import annotations

import json
from typing import Any

from threadline.server.model import SpanRecord

COLUMNS = (
    "project_id, trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status,"
    " status_message, span_type, input, output, input_source, output_source, model,"
    " input_tokens, output_tokens, total_tokens, cost_usd, attributes, events, resource,"
    " scope, session_id, user_id, metadata, tags"
)


def span_record(row: tuple[Any, ...]) -> SpanRecord:
    """A row of ``COLUMNS`` (without its project id) as the span that was written."""
    attributes = json.loads(row[20])
    # Put back the attributes whose text was stored once, as input or output.
    if row[13]:
        attributes[row[13]] = row[11]
    if row[14]:
        attributes[row[14]] = row[12]
    return SpanRecord(
        trace_id=row[1],
        span_id=row[2],
        parent_span_id=row[3],
        name=row[4],
        kind=row[5],
        start_ns=row[6],
        end_ns=row[7],
        status=row[8],
        status_message=row[9],
        span_type=row[10],
        input=row[11],
        output=row[12],
        input_source=row[13],
        output_source=row[14],
        model=row[15],
        input_tokens=row[16],
        output_tokens=row[17],
        total_tokens=row[18],
        cost_usd=row[19],
        attributes=attributes,
        events=json.loads(row[21]),
        resource=json.loads(row[22]),
        scope=row[23],
        session_id=row[24],
        user_id=row[25],
        metadata=json.loads(row[26]),
        tags=json.loads(row[27]),
    )
