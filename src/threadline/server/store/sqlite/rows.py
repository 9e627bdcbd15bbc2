"""Rows of the SQLite schema, to and from Threadline's records.

The column lists and the conversions live together so that a column is added in one
place. ``store.py`` holds the queries that use them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from threadline.server.jsontext import dumps, loads_bounded
from threadline.server.model import (
    Page,
    Session,
    Span,
    SpanEvent,
    SpanRecord,
    Trace,
    UserSummary,
    ns_to_datetime,
)
from threadline.server.store import cursors
from threadline.server.store.rollups import SessionRollup, StoredSpanFacts, TraceRollup
from threadline.server.store.sqlite.payloads import Packer

# Deeper inputs and outputs are shown as text: the API's serializer has a depth limit.
_MAX_PAYLOAD_DEPTH = 64

INSERT_SPAN = """
INSERT OR IGNORE INTO spans (
    project_id, trace_id, span_id, parent_span_id, start_ns, end_ns, status, input_tokens,
    output_tokens, total_tokens, cost_usd, session_id, user_id, metadata, tags, name, kind,
    span_type, model, scope, status_message, input_source, output_source, input, output,
    resource, events, attributes
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def span_row(
    project_id: int, s: SpanRecord, resource: str, packer: Packer | None = None
) -> tuple[Any, ...]:
    """A span in ``INSERT_SPAN``'s column order (the ClickHouse store's too), its
    payloads packed when given a ``packer``."""
    attributes = s.attributes
    if s.input_source or s.output_source:
        # A copy less two keys: copying in C costs a tenth of a comprehension's test
        # of every key.
        attributes = attributes.copy()
        if s.input_source:
            attributes.pop(s.input_source, None)
        if s.output_source:
            attributes.pop(s.output_source, None)
    return (
        project_id,
        s.trace_id,
        s.span_id,
        s.parent_span_id,
        s.start_ns,
        s.end_ns,
        s.status,
        s.input_tokens,
        s.output_tokens,
        s.total_tokens,
        s.cost_usd,
        s.session_id,
        s.user_id,
        dumps(s.metadata) if s.metadata else "{}",
        dumps(s.tags) if s.tags else "[]",
        s.name,
        s.kind,
        s.span_type,
        s.model,
        s.scope,
        s.status_message,
        s.input_source,
        s.output_source,
        packer.pack(s.input) if packer else s.input,
        packer.pack(s.output) if packer else s.output,
        resource,
        dumps(s.events) if s.events else "[]",
        dumps(attributes),
    )


# Only the small leading columns: typeof() reads a column's type from the record
# header without loading the payload.
SELECT_SPAN_FACTS = (
    "SELECT trace_id, span_id, parent_span_id, name, start_ns, end_ns, status,"
    " input_tokens, output_tokens, total_tokens, cost_usd, session_id, user_id, metadata,"
    " tags, typeof(input) != 'null', typeof(output) != 'null', rowid"
    " FROM spans WHERE project_id = ? AND trace_id IN ({})"
)


def json_container(text: str) -> Any:
    # Most spans carry no metadata and no tags: skip the parser for those.
    if text == "{}":
        return {}
    if text == "[]":
        return []
    return json.loads(text)


def span_facts(row: tuple[Any, ...]) -> StoredSpanFacts:
    return StoredSpanFacts(
        span_id=row[1],
        parent_span_id=row[2],
        name=row[3],
        start_ns=row[4],
        end_ns=row[5],
        is_error=row[6] == "error",
        input_tokens=row[7],
        output_tokens=row[8],
        total_tokens=row[9],
        cost_usd=row[10],
        session_id=row[11],
        user_id=row[12],
        metadata=json_container(row[13]),
        tags=json_container(row[14]),
        has_input=bool(row[15]),
        has_output=bool(row[16]),
    )


TRACE_COLUMNS = (
    "trace_id, session_id, user_id, name, start_ns, end_ns, span_count, error_count,"
    " input_tokens, output_tokens, total_tokens, cost_usd, status, tags, metadata,"
    " input_preview, output_preview"
)
SELECT_TRACES_FROM = f"SELECT {TRACE_COLUMNS} FROM traces"
SELECT_TRACES = SELECT_TRACES_FROM + " WHERE project_id = ?"
UPSERT_TRACE = (
    f"INSERT OR REPLACE INTO traces (project_id, {TRACE_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def trace_row(project_id: int, r: TraceRollup) -> tuple[Any, ...]:
    return (
        project_id,
        r.trace_id,
        r.session_id,
        r.user_id,
        r.name,
        r.start_ns,
        r.end_ns,
        r.span_count,
        r.error_count,
        r.input_tokens,
        r.output_tokens,
        r.total_tokens,
        r.cost_usd,
        r.status,
        dumps(r.tags),
        dumps(r.metadata),
        r.input_preview,
        r.output_preview,
    )


def trace_rollup(row: tuple[Any, ...]) -> TraceRollup:
    return TraceRollup(
        trace_id=row[0],
        session_id=row[1],
        user_id=row[2],
        name=row[3],
        start_ns=row[4],
        end_ns=row[5],
        span_count=row[6],
        error_count=row[7],
        input_tokens=row[8],
        output_tokens=row[9],
        total_tokens=row[10],
        cost_usd=row[11],
        status=row[12],
        tags=json_container(row[13]),
        metadata=json_container(row[14]),
        input_preview=row[15],
        output_preview=row[16],
    )


def trace(r: TraceRollup) -> Trace:
    return Trace(
        trace_id=r.trace_id,
        session_id=r.session_id,
        user_id=r.user_id,
        name=r.name,
        start_time=ns_to_datetime(r.start_ns),
        end_time=ns_to_datetime(r.end_ns),
        duration_ms=(r.end_ns - r.start_ns) / 1e6,
        span_count=r.span_count,
        error_count=r.error_count,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        total_tokens=r.total_tokens,
        cost_usd=r.cost_usd,
        status=r.status,  # type: ignore[arg-type]
        tags=r.tags,
        metadata=r.metadata,
        input_preview=r.input_preview,
        output_preview=r.output_preview,
    )


SESSION_COLUMNS = (
    "session_id, trace_count, span_count, start_ns, end_ns, input_tokens, output_tokens,"
    " total_tokens, cost_usd, error_count, user_ids, first_input, last_output"
)
UPSERT_SESSION = (
    f"INSERT OR REPLACE INTO sessions (project_id, {SESSION_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


SELECT_SESSIONS = f"SELECT {SESSION_COLUMNS} FROM sessions WHERE project_id = ?"


def session_row(project_id: int, r: SessionRollup) -> tuple[Any, ...]:
    return (
        project_id,
        r.session_id,
        r.trace_count,
        r.span_count,
        r.start_ns,
        r.end_ns,
        r.input_tokens,
        r.output_tokens,
        r.total_tokens,
        r.cost_usd,
        r.error_count,
        dumps(r.user_ids),
        r.first_input,
        r.last_output,
    )


def session_rollup(row: tuple[Any, ...]) -> SessionRollup:
    """A row of ``SESSION_COLUMNS`` as the rollup it was written from."""
    return SessionRollup(
        session_id=row[0],
        trace_count=row[1],
        span_count=row[2],
        start_ns=row[3],
        end_ns=row[4],
        input_tokens=row[5],
        output_tokens=row[6],
        total_tokens=row[7],
        cost_usd=row[8],
        error_count=row[9],
        user_ids=json.loads(row[10]),
        first_input=row[11],
        last_output=row[12],
    )


def session(row: tuple[Any, ...]) -> Session:
    return Session(
        session_id=row[0],
        trace_count=row[1],
        span_count=row[2],
        start_time=ns_to_datetime(row[3]),
        end_time=ns_to_datetime(row[4]),
        duration_ms=(row[4] - row[3]) / 1e6,
        input_tokens=row[5],
        output_tokens=row[6],
        total_tokens=row[7],
        cost_usd=row[8],
        error_count=row[9],
        user_ids=json.loads(row[10]),
        first_input=row[11],
        last_output=row[12],
    )


SPAN_COLUMNS = (
    "span_id, parent_span_id, name, span_type, kind, start_ns, end_ns, status,"
    " status_message, input, output, model, input_tokens, output_tokens, total_tokens,"
    " cost_usd, attributes, events, resource, input_source, output_source"
)


def span(
    row: tuple[Any, ...], unpack: Callable[[str | bytes | None], str | None] | None = None
) -> Span:
    """A row of ``SPAN_COLUMNS``, its payloads unpacked by ``unpack`` (the ClickHouse
    store reads the same columns, with plain-text payloads: nothing to unpack)."""
    attributes = json.loads(row[16])
    input, output = row[9], row[10]
    if unpack is not None:
        input, output = unpack(input), unpack(output)
    # Put back the attributes whose text was stored once, as input or output.
    if row[19]:
        attributes[row[19]] = input
    if row[20]:
        attributes[row[20]] = output
    return Span(
        span_id=row[0],
        parent_span_id=row[1],
        name=row[2],
        span_type=row[3],
        kind=row[4],
        start_time=ns_to_datetime(row[5]),
        end_time=ns_to_datetime(row[6]),
        duration_ms=(row[6] - row[5]) / 1e6,
        status=row[7],
        status_message=row[8],
        input=json_or_text(input),
        output=json_or_text(output),
        model=row[11],
        input_tokens=row[12],
        output_tokens=row[13],
        total_tokens=row[14],
        cost_usd=row[15],
        attributes=attributes,
        events=[
            SpanEvent(name=e["name"], time=ns_to_datetime(e["time_ns"]), attributes=e["attributes"])
            for e in json.loads(row[17])
        ],
        resource=json.loads(row[18]),
    )


def json_or_text(value: str | None) -> Any:
    """An input or output as the API shows it: parsed JSON, or the text as sent when it
    is not JSON within bounds (see ``jsontext``)."""
    if value is None:
        return None
    try:
        return loads_bounded(value, _MAX_PAYLOAD_DEPTH)
    except ValueError:
        return value


def user_page(rows: list[tuple[Any, ...]], limit: int) -> Page[UserSummary]:
    """Users from rows of (user, sessions, traces, input, output and total tokens, cost,
    errors, first and last seen), fetched with one row more than ``limit`` to tell
    whether there is a next page."""
    items = [
        UserSummary(
            user_id=r[0],
            session_count=r[1],
            trace_count=r[2],
            input_tokens=r[3],
            output_tokens=r[4],
            total_tokens=r[5],
            cost_usd=r[6],
            error_count=r[7],
            first_seen=ns_to_datetime(r[8]),
            last_seen=ns_to_datetime(r[9]),
        )
        for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = cursors.encode(last[9], last[0])
    return Page[UserSummary](items=items, next_cursor=next_cursor)
