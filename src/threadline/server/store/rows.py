"""Stored rows to Threadline's records and back, the same for both backends.

Both backends keep spans in the columns of ``columns.SPANS`` (JSON text for attributes,
events, resource, metadata and tags; an attribute that became the input or output is
stored once, as the input or output) and rollups in those of ``TRACES`` and
``SESSIONS``. Rows are read by column name (``Columns.named``), never by position.
A backend that stores a column otherwise says how to read it (ClickHouse keeps a
trace's tags as an array) or packs payloads before insert (SQLite's zstd frames).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from operator import itemgetter
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
from threadline.server.store import cursors, sorts
from threadline.server.store.columns import (
    SESSIONS,
    SPAN_DETAIL,
    SPAN_FACTS,
    SPAN_RECORD,
    SPANS,
    TRACES,
    USER_TOTALS,
)
from threadline.server.store.rollups import SessionRollup, StoredSpanFacts, TraceRollup

# Deeper inputs and outputs are shown as text: the API's serializer has a depth limit.
MAX_PAYLOAD_DEPTH = 64

# A users list's cursor: the last row's last activity and user id.
_USER_PAGE_KEY = itemgetter(USER_TOTALS.position("last_seen_ns"), USER_TOTALS.position("user_id"))

Pack = Callable[[str | None], str | bytes | None]
Unpack = Callable[[str | bytes | None], str | None]

# The span columns read off a SpanRecord as they are; the others are made below.
_SPAN_AS_IS = SPANS.getter("project_id")
_AT = {name: SPANS.position(name) for name in SPANS.names}


def span_row(project_id: int, s: SpanRecord, resource: str, pack: Pack | None = None) -> list[Any]:
    """A span's values in ``SPANS`` order, its resource already encoded (the spans of
    one OTLP resource share it) and its payloads packed by ``pack`` when given."""
    row = [project_id, *_SPAN_AS_IS(s)]
    attributes = s.attributes
    if s.input_source or s.output_source:
        # A copy less two keys: copying in C costs a tenth of a comprehension's test
        # of every key.
        attributes = attributes.copy()
        if s.input_source:
            attributes.pop(s.input_source, None)
        if s.output_source:
            attributes.pop(s.output_source, None)
    row[_AT["attributes"]] = dumps(attributes)
    row[_AT["metadata"]] = dumps(s.metadata) if s.metadata else "{}"
    row[_AT["tags"]] = dumps(s.tags) if s.tags else "[]"
    row[_AT["events"]] = dumps(s.events) if s.events else "[]"
    row[_AT["resource"]] = resource
    if pack is not None:
        row[_AT["input"]] = pack(s.input)
        row[_AT["output"]] = pack(s.output)
    return row


def json_container(text: str) -> Any:
    # Most spans carry no metadata and no tags: skip the parser for those.
    if text == "{}":
        return {}
    if text == "[]":
        return []
    return json.loads(text)


def span_facts(row: Sequence[Any]) -> StoredSpanFacts:
    """A row that starts with ``SPAN_FACTS``, as what its trace's rollup reads."""
    r = SPAN_FACTS.named(row)
    del r["trace_id"]
    r["is_error"] = r.pop("status") == "error"
    r["metadata"] = json_container(r["metadata"])
    r["tags"] = json_container(r["tags"])
    r["has_input"] = bool(r["has_input"])
    r["has_output"] = bool(r["has_output"])
    return StoredSpanFacts(**r)


def trace_rollup(
    row: Sequence[Any], tags: Callable[[Any], list[str]] = json_container
) -> TraceRollup:
    """A row that starts with ``TRACES``; ``tags`` reads the stored tags."""
    r = TRACES.named(row)
    r["tags"] = tags(r["tags"])
    r["metadata"] = json_container(r["metadata"])
    return TraceRollup(**r)


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
        context_use=r.context_use,
    )


def session_rollup(row: Sequence[Any]) -> SessionRollup:
    """A row that starts with ``SESSIONS``, as the rollup it was written from."""
    r = SESSIONS.named(row)
    r["user_ids"] = json.loads(r["user_ids"])
    return SessionRollup(**r)


def session(row: Sequence[Any]) -> Session:
    """A row that starts with ``SESSIONS``, as the API shows it."""
    return session_of(session_rollup(row))


def session_of(r: SessionRollup) -> Session:
    """A session's rollup as the API shows it."""
    return Session(
        session_id=r.session_id,
        trace_count=r.trace_count,
        span_count=r.span_count,
        start_time=ns_to_datetime(r.start_ns),
        end_time=ns_to_datetime(r.end_ns),
        duration_ms=(r.end_ns - r.start_ns) / 1e6,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        total_tokens=r.total_tokens,
        cost_usd=r.cost_usd,
        error_count=r.error_count,
        user_ids=r.user_ids,
        first_input=r.first_input,
        last_output=r.last_output,
        peak_context_use=r.peak_context_use,
    )


def span(row: Sequence[Any], unpack: Unpack | None = None) -> Span:
    """A row of ``SPAN_DETAIL``, its payloads unpacked by ``unpack`` (ClickHouse keeps
    plain text: nothing to unpack)."""
    r = SPAN_DETAIL.named(row)
    attributes = json.loads(r["attributes"])
    input, output = r["input"], r["output"]
    if unpack is not None:
        input, output = unpack(input), unpack(output)
    # Put back the attributes whose text was stored once, as input or output.
    if r["input_source"]:
        attributes[r["input_source"]] = input
    if r["output_source"]:
        attributes[r["output_source"]] = output
    return Span(
        span_id=r["span_id"],
        parent_span_id=r["parent_span_id"],
        name=r["name"],
        span_type=r["span_type"],
        kind=r["kind"],
        start_time=ns_to_datetime(r["start_ns"]),
        end_time=ns_to_datetime(r["end_ns"]),
        duration_ms=(r["end_ns"] - r["start_ns"]) / 1e6,
        status=r["status"],
        status_message=r["status_message"],
        input=json_or_text(input),
        output=json_or_text(output),
        model=r["model"],
        input_tokens=r["input_tokens"],
        output_tokens=r["output_tokens"],
        total_tokens=r["total_tokens"],
        cost_usd=r["cost_usd"],
        attributes=attributes,
        events=[
            SpanEvent(name=e["name"], time=ns_to_datetime(e["time_ns"]), attributes=e["attributes"])
            for e in json.loads(r["events"])
        ],
        resource=json.loads(r["resource"]),
    )


def json_or_text(value: str | None) -> Any:
    """An input or output as the API shows it: parsed JSON, or the text as sent when it
    is not JSON within bounds (see ``jsontext``)."""
    if value is None:
        return None
    try:
        return loads_bounded(value, MAX_PAYLOAD_DEPTH)
    except ValueError:
        return value


def span_record(row: Sequence[Any], unpack: Unpack | None = None) -> SpanRecord:
    """A row of ``SPAN_RECORD`` as the span that was written (for copying spans between
    stores), its payloads unpacked by ``unpack`` when given."""
    r = SPAN_RECORD.named(row)
    del r["project_id"]
    if unpack is not None:
        r["input"], r["output"] = unpack(r["input"]), unpack(r["output"])
    r["attributes"] = json.loads(r["attributes"])
    # Put back the attributes whose text was stored once, as input or output.
    if r["input_source"]:
        r["attributes"][r["input_source"]] = r["input"]
    if r["output_source"]:
        r["attributes"][r["output_source"]] = r["output"]
    for name in ("events", "resource", "metadata", "tags"):
        r[name] = json.loads(r[name])
    return SpanRecord(**r)


# A sessions list row is a session's columns, then its sort key: the cursor holds both.
session_page_key = itemgetter(len(SESSIONS.names), SESSIONS.position("session_id"))

# A traces list row is a trace's columns, then its sort key: the cursor holds both.
trace_page_key = itemgetter(len(TRACES.names), TRACES.position("trace_id"))

# The keyset order of stored spans: the project, trace and span id of a SPAN_RECORD row.
span_record_key = itemgetter(
    *(SPAN_RECORD.position(n) for n in ("project_id", "trace_id", "span_id"))
)


def user_page(rows: list[tuple[Any, ...]], limit: int) -> Page[UserSummary]:
    """Users from rows of ``USER_TOTALS``, fetched with one row more than ``limit`` to
    tell whether there is a next page."""
    page, next_cursor = cursors.page(rows, limit, _USER_PAGE_KEY, made_by=sorts.USERS_BY_ACTIVITY)
    items = []
    for row in page:
        r = USER_TOTALS.named(row)
        items.append(
            UserSummary(
                user_id=r["user_id"],
                session_count=r["session_count"],
                trace_count=r["trace_count"],
                input_tokens=r["input_tokens"],
                output_tokens=r["output_tokens"],
                total_tokens=r["total_tokens"],
                cost_usd=r["cost_usd"],
                error_count=r["error_count"],
                first_seen=ns_to_datetime(r["first_seen_ns"]),
                last_seen=ns_to_datetime(r["last_seen_ns"]),
            )
        )
    return Page[UserSummary](items=items, next_cursor=next_cursor)
