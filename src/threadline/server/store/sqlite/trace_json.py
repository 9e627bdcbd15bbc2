"""Traces with all their spans as JSON text, straight from the rows: the bulk export's
fast path (``export.py``), the same document as ``TraceDetail.model_dump_json()``
without a pydantic model per trace or span.

What makes it fast (docs/benchmarks.md, export): the spans of many traces are read in
one query, unsorted (sorted per trace here); a trace is one ``orjson.dumps`` of its
row's values with a dict of each span's (times made by ``utc_times``), written into one
buffer; stored JSON (attributes, resources, events without any) is passed through as
``orjson.Fragment``s, unparsed; an input or output that is JSON is checked by orjson
(in C) and passed through as stored, where ``get_trace`` parses it into Python objects
for pydantic to write back (or not even checked: the write found it to be such JSON,
``json_payloads.py``), and one that is plain text is written as a string without
trying a parser. Inputs and outputs that orjson refuses or that may nest deeper than
the API's bound go the slow way, so the document says what
``get_trace`` says. ``tests/store/test_export_contract.py`` holds the two equal; orjson
writes strings, floats and UTC times as pydantic does.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from pydantic_core import to_json as pydantic_json

from threadline.server.model import ns_to_datetime, picodollar_cost
from threadline.server.preview_text import readable
from threadline.server.store import rows as table_rows
from threadline.server.store.columns import SPAN_DETAIL, TRACES, Columns
from threadline.server.store.sqlite import scores
from threadline.server.store.sqlite.chunked import select_in
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.json_payloads import (
    INPUT,
    MAY_START_JSON,
    OUTPUT,
    json_within_bounds,
)
from threadline.server.store.sqlite.trace_keys import KEYS_OF
from threadline.server.store.sqlite.utc_times import NAIVE_UTC, utc_datetime

Unpack = Callable[[str | bytes | None], str | None]

_OPTIONS = orjson.OPT_UTC_Z | NAIVE_UTC
_EMPTY_OBJECT = orjson.Fragment(b"{}")
_EMPTY_LIST = orjson.Fragment(b"[]")
# A span's integers and short texts (never a real: SQLite writes those with 15 digits),
# read as one ``json_array`` and parsed by orjson: fetching a column costs the driver
# more than SQLite spends writing it into the array and orjson reading it back (the
# interpreter lock let go and taken back, and SQLite's mutex, once a column).
_SCALARS = Columns(
    "start_ns",
    "span_id",
    "parent_span_id",
    "name",
    "span_type",
    "kind",
    "end_ns",
    "status",
    "status_message",
    "model",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "input_source",
    "output_source",
)
# The rest of a span's row, as ``span_document`` unpacks it after its trace's key and
# its scalars: payloads (text, or packed bytes), the cost, stored JSON.
_SPAN_REST = Columns("input", "output", "cost_usd", "attributes", "events", "resource")
assert {*_SCALARS.names, *_SPAN_REST.names} == set(SPAN_DETAIL.names), "a span column is missed"
# The traces by id, each row with its key; then their spans by those keys, integers (the
# ids are looked up in the trace_keys index once, not once a statement). The scalars'
# array ends with the span's ``json_payloads``.
_SELECT_TRACES = f"SELECT {TRACES.sql}, trace_key FROM traces WHERE trace_key IN {KEYS_OF}"
_SELECT_SPANS = (
    f"SELECT trace_key, json_array({_SCALARS.sql}, json_payloads), {_SPAN_REST.sql} FROM spans"
    " WHERE trace_key IN ({})"
)


def session_trace_ids(
    conn: sqlite3.Connection, project_id: int, session_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Per session of ``session_ids`` with traces, their ids by (start, id)."""
    out: dict[str, list[str]] = defaultdict(list)
    for session_id, trace_id in select_in(
        conn,
        "SELECT session_id, trace_id FROM traces WHERE project_id = ? AND session_id IN ({})"
        " ORDER BY session_id, start_ns, trace_id",
        (project_id,),
        list(dict.fromkeys(session_ids)),
    ):
        out[session_id].append(trace_id)
    return dict(out)


def trace_details_json(
    conn: sqlite3.Connection, project_id: int, trace_ids: Sequence[str], unpack: Unpack
) -> dict[str, bytes]:
    """Per stored trace of ``trace_ids``, its detail as JSON (as ``get_trace`` shows it)."""
    ids = list(dict.fromkeys(trace_ids))
    traces: dict[int, Sequence[Any]] = {
        row[-1]: row for row in select_in(conn, _SELECT_TRACES, (project_id,), ids)
    }
    summaries = scores.summaries(conn, project_id, "trace", [row[0] for row in traces.values()])
    # Sorted here, by (start, span id) as the detail shows them: an ORDER BY made SQLite
    # sort every batch's rows in a temporary B-tree, a third of reading them.
    spans: dict[int, list[tuple[int, str, dict[str, Any]]]] = {key: [] for key in traces}
    for row in select_in(conn, _SELECT_SPANS, (), list(traces)):
        scalars = orjson.loads(row[1])
        spans[row[0]].append((scalars[0], scalars[1], span_document(scalars, row, unpack)))
    out: dict[str, bytes] = {}
    for key, trace in traces.items():
        ordered = spans[key]
        ordered.sort()  # span ids are unique in a trace: the documents are never compared
        document = trace_head(trace, summaries.get(trace[0]))
        document["spans"] = [s[2] for s in ordered]
        with_texts(document)
        # One orjson.dumps a trace, into one buffer: a bytes object a span, joined and
        # then joined again to the head, copied every span's JSON three more times.
        out[trace[0]] = orjson.dumps(document, option=_OPTIONS)
    return out


def trace_head(row: Sequence[Any], summaries: dict[str, Any] | None) -> dict[str, Any]:
    """A row of ``SELECT_TRACES`` as the API's ``Trace`` (the keys in its order, the
    values as ``Trace.model_dump_json`` writes them), for the spans to follow."""
    (
        trace_id,
        session_id,
        user_id,
        name,
        start_ns,
        end_ns,
        span_count,
        error_count,
        input_tokens,
        output_tokens,
        total_tokens,
        cost_usd,
        status,
        tags,
        metadata,
        input_preview,
        output_preview,
        context_use,
        *_,
    ) = row
    return {
        "trace_id": trace_id,
        "session_id": session_id,
        "user_id": user_id,
        "name": name,
        "start_time": utc_datetime(start_ns / 1e9),
        "end_time": utc_datetime(end_ns / 1e9),
        "duration_ms": (end_ns - start_ns) / 1e6,
        "span_count": span_count,
        "error_count": error_count,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": total_tokens,
        "cost_usd": None if cost_usd is None else picodollar_cost(cost_usd),
        "status": status,
        "tags": _container(tags),
        "metadata": _container(metadata),
        "input_preview": input_preview,
        "output_preview": output_preview,
        "scores": orjson.Fragment(_to_json(summaries)) if summaries else _EMPTY_OBJECT,
        "snippet": None,
        "context_use": context_use,
    }


def with_texts(document: dict[str, Any]) -> None:
    """The fields ``Trace`` computes from a trace's previews (its ``*_text``), added
    last, as the API writes them."""
    document["input_preview_text"] = readable(document["input_preview"])
    document["output_preview_text"] = readable(document["output_preview"])


def span_document(scalars: list[Any], row: Sequence[Any], unpack: Unpack) -> dict[str, Any]:
    """A span's ``_SCALARS`` and ``json_payloads`` (parsed) and its row of
    ``_SELECT_SPANS`` as the API's ``Span``, for ``orjson.dumps`` to write."""
    (
        start_ns,
        span_id,
        parent_span_id,
        name,
        span_type,
        kind,
        end_ns,
        status,
        status_message,
        model,
        input_tokens,
        output_tokens,
        total_tokens,
        input_source,
        output_source,
        as_json,
    ) = scalars
    _, _, input, output, cost_usd, stored_attributes, stored_events, resource = row
    # Calls saved where they do nothing (a span's share of the export's time is a few
    # microseconds): only packed payloads are unpacked, empty maps are not looked into.
    if type(input) is bytes:
        input = unpack(input)
    if type(output) is bytes:
        output = unpack(output)
    if input_source or output_source:
        # The attribute an input or output came from was stored once: put it back.
        restored = json.loads(stored_attributes)
        if input_source:
            restored[input_source] = input
        if output_source:
            restored[output_source] = output
        attributes = orjson.Fragment(_to_json(restored))
    else:
        attributes = _EMPTY_OBJECT if stored_attributes == "{}" else _stored(stored_attributes)
    events: Any = _EMPTY_LIST
    if stored_events != "[]":
        events = orjson.Fragment(
            _to_json(
                [
                    {
                        "name": e["name"],
                        "time": ns_to_datetime(e["time_ns"]),
                        "attributes": e["attributes"],
                    }
                    for e in json.loads(stored_events)
                ]
            )
        )
    return {
        "span_id": span_id,
        "parent_span_id": parent_span_id,
        "name": name,
        "span_type": span_type,
        "kind": kind,
        "start_time": utc_datetime(start_ns / 1e9),
        "end_time": utc_datetime(end_ns / 1e9),
        "duration_ms": (end_ns - start_ns) / 1e6,
        "status": status,
        "status_message": status_message,
        "input": orjson.Fragment(input) if as_json & INPUT else _payload(input),
        "output": orjson.Fragment(output) if as_json & OUTPUT else _payload(output),
        "model": model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": total_tokens,
        "cost_usd": None if cost_usd is None else picodollar_cost(cost_usd),
        "attributes": attributes,
        "events": events,
        "resource": _EMPTY_OBJECT if resource == "{}" else _stored(resource),
    }


def _to_json(value: Any) -> bytes:
    """``value`` as pydantic writes an ``Any`` field (NaN and infinities as null)."""
    return pydantic_json(value, inf_nan_mode="null")


def _container(text: str) -> Any:
    """Stored tags or metadata as ``Trace`` writes them (parsed, so written anew)."""
    if text == "{}":
        return _EMPTY_OBJECT
    if text == "[]":
        return _EMPTY_LIST
    return orjson.Fragment(_to_json(json.loads(text)))


def _stored(text: str) -> orjson.Fragment:
    """Attributes or a resource as stored (by ``jsontext.dumps``): passed through, but
    for the rare text that ``json`` wrote where orjson could not, which may hold NaN
    (written by the API as null)."""
    if text == "{}":
        return _EMPTY_OBJECT
    if "NaN" in text or "Infinity" in text:
        return orjson.Fragment(_to_json(json.loads(text)))
    return orjson.Fragment(text)


def _payload(text: str | None) -> Any:
    """An input or output the write did not mark as JSON to pass through: JSON text
    passed through when it is JSON within bounds (what ``rows.json_or_text`` would
    parse), else what that function makes of it."""
    if text is None:
        return None
    if text[:1] not in MAY_START_JSON:
        # Plain text (most prompts and completions): ``json_or_text`` would keep it as
        # it is, after two parsers had failed on it, at ten times the cost of the rest.
        return text
    if json_within_bounds(text):
        return orjson.Fragment(text)
    return orjson.Fragment(_to_json(table_rows.json_or_text(text)))
