"""Rows of the ClickHouse schema, to and from Threadline's records.

Spans keep the SQLite store's columns (JSON text for attributes, events, resource,
metadata and tags; an attribute that became the input or output is stored once), and
ClickHouse compresses the payload columns itself (ZSTD codec), so payloads are plain
text here. The record-level conversions (a rollup to a ``Trace``, a session row to a
``Session``) are the SQLite store's, so both backends show the same thing.
"""

from __future__ import annotations

import json
from typing import Any

from threadline.server.model import Span, SpanEvent, SpanRecord, ns_to_datetime
from threadline.server.store.sqlite.rows import (
    dumps,
    json_container,
    json_or_text,
    session,
    span_facts,
    trace,
    user_page,
)

__all__ = [
    "dumps", "json_container", "session", "span", "span_facts", "span_row", "trace", "user_page",
]

SPAN_INSERT_COLUMNS = [
    "project_id", "trace_id", "span_id", "parent_span_id", "start_ns", "end_ns", "status",
    "input_tokens", "output_tokens", "total_tokens", "cost_usd", "session_id", "user_id",
    "metadata", "tags", "name", "kind", "span_type", "model", "scope", "status_message",
    "input_source", "output_source", "input", "output", "resource", "events", "attributes",
]


def span_row(project_id: int, s: SpanRecord, resource: str) -> list[Any]:
    """A span in ``SPAN_INSERT_COLUMNS`` order."""
    attributes = s.attributes
    if s.input_source or s.output_source:
        attributes = {
            k: v for k, v in attributes.items() if k != s.input_source and k != s.output_source
        }
    return [
        project_id, s.trace_id, s.span_id, s.parent_span_id, s.start_ns, s.end_ns, s.status,
        s.input_tokens, s.output_tokens, s.total_tokens, s.cost_usd, s.session_id, s.user_id,
        dumps(s.metadata) if s.metadata else "{}", dumps(s.tags) if s.tags else "[]",
        s.name, s.kind, s.span_type, s.model, s.scope, s.status_message, s.input_source,
        s.output_source, s.input, s.output, resource, dumps(s.events) if s.events else "[]",
        dumps(attributes),
    ]


# What a trace's rollup reads of its spans: no payload column, only whether it is set
# (isNotNull reads the column's small null map, not the text).
SPAN_FACT_COLUMNS = (
    "trace_id, span_id, parent_span_id, name, start_ns, end_ns, status, input_tokens,"
    " output_tokens, total_tokens, cost_usd, session_id, user_id, metadata, tags,"
    " isNotNull(input), isNotNull(output)"
)


SPAN_COLUMNS = (
    "span_id, parent_span_id, name, span_type, kind, start_ns, end_ns, status,"
    " status_message, input, output, model, input_tokens, output_tokens, total_tokens,"
    " cost_usd, attributes, events, resource, input_source, output_source"
)


def span(row: tuple[Any, ...]) -> Span:
    """A row of ``SPAN_COLUMNS``."""
    attributes = json.loads(row[16])
    # Put back the attributes whose text was stored once, as input or output.
    if row[19]:
        attributes[row[19]] = row[9]
    if row[20]:
        attributes[row[20]] = row[10]
    return Span(
        span_id=row[0], parent_span_id=row[1], name=row[2], span_type=row[3], kind=row[4],
        start_time=ns_to_datetime(row[5]), end_time=ns_to_datetime(row[6]),
        duration_ms=(row[6] - row[5]) / 1e6, status=row[7], status_message=row[8],
        input=json_or_text(row[9]), output=json_or_text(row[10]), model=row[11],
        input_tokens=row[12], output_tokens=row[13], total_tokens=row[14], cost_usd=row[15],
        attributes=attributes,
        events=[
            SpanEvent(name=e["name"], time=ns_to_datetime(e["time_ns"]),
                      attributes=e["attributes"])
            for e in json.loads(row[17])
        ],
        resource=json.loads(row[18]),
    )
