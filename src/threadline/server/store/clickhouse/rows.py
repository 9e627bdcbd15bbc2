"""Rows of the ClickHouse schema, to and from Threadline's records.

Spans keep the SQLite store's columns (JSON text for attributes, events, resource,
metadata and tags; an attribute that became the input or output is stored once), and
ClickHouse compresses the payload columns itself (ZSTD codec), so payloads are plain
text here. The row conversions (a span to its row and back, a rollup to a ``Trace``, a
session row to a ``Session``) are the SQLite store's, so both backends show the same
thing; only the queries and these column lists are ClickHouse's.
"""

from __future__ import annotations

from threadline.server.store.sqlite.rows import (
    SPAN_COLUMNS,
    dumps,
    json_container,
    session,
    span,
    span_facts,
    span_row,
    trace,
    user_page,
)

__all__ = [
    "SPAN_COLUMNS",
    "dumps",
    "json_container",
    "session",
    "span",
    "span_facts",
    "span_row",
    "trace",
    "user_page",
]

SPAN_INSERT_COLUMNS = [
    "project_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "start_ns",
    "end_ns",
    "status",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost_usd",
    "session_id",
    "user_id",
    "metadata",
    "tags",
    "name",
    "kind",
    "span_type",
    "model",
    "scope",
    "status_message",
    "input_source",
    "output_source",
    "input",
    "output",
    "resource",
    "events",
    "attributes",
]


# What a trace's rollup reads of its spans: no payload column, only whether it is set
# (isNotNull reads the column's small null map, not the text).
SPAN_FACT_COLUMNS = (
    "trace_id, span_id, parent_span_id, name, start_ns, end_ns, status, input_tokens,"
    " output_tokens, total_tokens, cost_usd, session_id, user_id, metadata, tags,"
    " isNotNull(input), isNotNull(output)"
)
