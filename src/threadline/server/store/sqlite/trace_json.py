"""Traces with all their spans as JSON text, straight from the rows: the bulk export's
fast path (``export.py``), the same document as ``TraceDetail.model_dump_json()``
without a pydantic model per span.

What makes it fast (docs/benchmarks.md, export): the spans of many traces are read in
one query; stored JSON (attributes, resources, events without any) is passed through as
``orjson.Fragment``s, unparsed; an input or output that is JSON is checked by orjson
(in C) and passed through as stored, where ``get_trace`` parses it into Python objects
for pydantic to write back. Inputs and outputs that orjson refuses or that may nest
deeper than the API's bound go the slow way, so the document says what ``get_trace``
says. ``tests/store/test_export_contract.py`` holds the two equal.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from pydantic_core import to_json as pydantic_json

from threadline.server.model import ns_to_datetime
from threadline.server.store import rows as table_rows
from threadline.server.store.columns import SPAN_DETAIL
from threadline.server.store.sqlite import rows as schema
from threadline.server.store.sqlite import scores
from threadline.server.store.sqlite.chunked import select_in
from threadline.server.store.sqlite.driver import sqlite3

Unpack = Callable[[str | bytes | None], str | None]

_OPTIONS = orjson.OPT_UTC_Z
_EMPTY_OBJECT = orjson.Fragment(b"{}")
_EMPTY_LIST = orjson.Fragment(b"[]")
# Containers (``{`` and ``[``) a payload may open before its depth needs counting: with
# at most this many, it cannot nest deeper than the API's bound.
_SURELY_SHALLOW = table_rows.MAX_PAYLOAD_DEPTH
# Where each column is in a row of (trace_id, SPAN_DETAIL).
_AT = {name: SPAN_DETAIL.position(name) + 1 for name in SPAN_DETAIL.names}


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
    traces = {
        row[0]: row
        for row in select_in(
            conn, schema.SELECT_TRACES + " AND trace_id IN ({})", (project_id,), ids
        )
    }
    summaries = scores.summaries(conn, project_id, "trace", list(traces))
    spans: dict[str, list[bytes]] = defaultdict(list)
    for row in select_in(
        conn,
        f"SELECT trace_id, {SPAN_DETAIL.sql} FROM spans"
        " WHERE project_id = ? AND trace_id IN ({}) ORDER BY trace_id, start_ns, span_id",
        (project_id,),
        list(traces),
    ):
        spans[row[0]].append(span_json(row, unpack))
    out: dict[str, bytes] = {}
    for trace_id, row in traces.items():
        trace = table_rows.trace(table_rows.trace_rollup(row))
        trace.scores = summaries.get(trace_id, {})
        head = trace.model_dump_json().encode()
        out[trace_id] = head[:-1] + b',"spans":[' + b",".join(spans[trace_id]) + b"]}"
    return out


def span_json(row: tuple[Any, ...], unpack: Unpack) -> bytes:
    """A row of (trace_id, ``SPAN_DETAIL``) as the API's ``Span`` JSON."""
    at = _AT
    input, output = unpack(row[at["input"]]), unpack(row[at["output"]])
    input_source, output_source = row[at["input_source"]], row[at["output_source"]]
    if input_source or output_source:
        # The attribute an input or output came from was stored once: put it back.
        restored = json.loads(row[at["attributes"]])
        if input_source:
            restored[input_source] = input
        if output_source:
            restored[output_source] = output
        attributes = orjson.Fragment(_to_json(restored))
    else:
        attributes = _stored(row[at["attributes"]])
    events: Any = _EMPTY_LIST
    if row[at["events"]] != "[]":
        events = orjson.Fragment(
            _to_json(
                [
                    {
                        "name": e["name"],
                        "time": ns_to_datetime(e["time_ns"]),
                        "attributes": e["attributes"],
                    }
                    for e in json.loads(row[at["events"]])
                ]
            )
        )
    start_ns, end_ns = row[at["start_ns"]], row[at["end_ns"]]
    return orjson.dumps(
        {
            "span_id": row[at["span_id"]],
            "parent_span_id": row[at["parent_span_id"]],
            "name": row[at["name"]],
            "span_type": row[at["span_type"]],
            "kind": row[at["kind"]],
            "start_time": ns_to_datetime(start_ns),
            "end_time": ns_to_datetime(end_ns),
            "duration_ms": (end_ns - start_ns) / 1e6,
            "status": row[at["status"]],
            "status_message": row[at["status_message"]],
            "input": _payload(input),
            "output": _payload(output),
            "model": row[at["model"]],
            "input_tokens": row[at["input_tokens"]],
            "output_tokens": row[at["output_tokens"]],
            "total_tokens": row[at["total_tokens"]],
            "cost_usd": row[at["cost_usd"]],
            "attributes": attributes,
            "events": events,
            "resource": _stored(row[at["resource"]]),
        },
        option=_OPTIONS,
    )


def _to_json(value: Any) -> bytes:
    """``value`` as pydantic writes an ``Any`` field (NaN and infinities as null)."""
    return pydantic_json(value, inf_nan_mode="null")


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
    """An input or output: JSON text passed through when it is JSON within bounds (what
    ``rows.json_or_text`` would parse), else what that function makes of it."""
    if text is None:
        return None
    if text.count("{") + text.count("[") <= _SURELY_SHALLOW:
        try:
            orjson.loads(text)  # stricter than json: NaN, lone surrogates refused
        except orjson.JSONDecodeError:
            pass
        else:
            return orjson.Fragment(text)
    return orjson.Fragment(_to_json(table_rows.json_or_text(text)))
