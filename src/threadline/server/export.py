"""The Sessions and Traces lists, whole, as CSV or JSON Lines: streamed, so that an
export of a million rows holds one page of them at a time.

Rows are read by keyset pages of the lists (``PAGE`` at a time, rollups only, the
lists' own filters and order) and written into a buffer that is handed on every
``CHUNK`` bytes; the caller streams the chunks (``StreamingResponse`` over this sync
iterator runs each step in the thread pool, where store reads belong). With
``include_spans`` (JSONL only) each session's line carries every trace with all its
spans, read one trace at a time, in the shape of the session page's *Export JSON*
(``{"session": ..., "traces": [...]}``), and each trace's line is the trace detail.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import BaseModel

from threadline.server.errors import BadRequest
from threadline.server.model import Session, SessionQuery, Trace, TraceQuery
from threadline.server.session_activity import mark_activity
from threadline.server.store import Store

ExportFormat = Literal["csv", "jsonl"]
PAGE = 500
CHUNK = 64 * 1024
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}

SESSION_COLUMNS = list(Session.model_fields)
TRACE_COLUMNS = list(Trace.model_fields)


def check(fmt: str, include_spans: bool) -> None:
    if include_spans and fmt != "jsonl":
        raise BadRequest("include=spans needs format=jsonl: a CSV row cannot hold a trace's spans")


def sessions(
    store: Store,
    project_id: int,
    query: SessionQuery,
    fmt: ExportFormat,
    include_spans: bool,
    idle_seconds: float,
) -> Iterator[bytes]:
    """Every session ``query`` matches (its page ignored), in the list's order."""
    check(fmt, include_spans)
    rows = _session_rows(store, project_id, query, idle_seconds)
    if fmt == "csv":
        return _chunks(_csv(SESSION_COLUMNS, rows))
    if include_spans:
        return _chunks(_session_lines_with_spans(store, project_id, rows))
    return _chunks(_json_lines(rows))


def traces(
    store: Store,
    project_id: int,
    query: TraceQuery,
    fmt: ExportFormat,
    include_spans: bool = False,
) -> Iterator[bytes]:
    """Every trace ``query`` matches (its page ignored), newest first."""
    check(fmt, include_spans)
    rows = _pages(lambda q: store.list_traces(project_id, q), query)
    if fmt == "csv":
        return _chunks(_csv(TRACE_COLUMNS, rows))
    if include_spans:
        return _chunks(_trace_lines_with_spans(store, project_id, rows))
    return _chunks(_json_lines(rows))


# --- rows -----------------------------------------------------------------------------


def _pages(list_page: Callable[[Any], Any], query: Any) -> Iterator[Any]:
    query = query.model_copy(update={"limit": PAGE, "cursor": None})
    while True:
        page = list_page(query)
        yield from page.items
        if page.next_cursor is None:
            return
        query = query.model_copy(update={"cursor": page.next_cursor})


def _session_rows(
    store: Store, project_id: int, query: SessionQuery, idle_seconds: float
) -> Iterator[Session]:
    def page(q: SessionQuery) -> Any:
        found = store.list_sessions(project_id, q)
        mark_activity(found.items, idle_seconds)
        return found

    return _pages(page, query)


# --- formats --------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def _csv(columns: list[str], rows: Iterator[BaseModel]) -> Iterator[str]:
    """A header, then one record a row: lists and maps (user ids, tags, metadata,
    scores) as JSON text, empty for null. Values are written as they are: a spreadsheet
    may read a cell starting with ``=`` as a formula (docs/api.md)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        values = row.model_dump(mode="json")
        writer.writerow([_cell(values[c]) for c in columns])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _json_lines(rows: Iterator[BaseModel]) -> Iterator[str]:
    for row in rows:
        yield row.model_dump_json() + "\n"


def _session_lines_with_spans(
    store: Store, project_id: int, rows: Iterator[Session]
) -> Iterator[str]:
    for session in rows:
        yield '{"session":' + session.model_dump_json() + ',"traces":['
        detail = store.get_session(project_id, session.session_id)
        first = True
        for trace in detail.traces if detail is not None else []:
            # One trace read at a time: a long session never sits in memory whole.
            full = store.get_trace(project_id, trace.trace_id)
            if full is None:  # deleted meanwhile
                continue
            yield ("" if first else ",") + full.model_dump_json()
            first = False
        yield "]}\n"


def _trace_lines_with_spans(store: Store, project_id: int, rows: Iterator[Trace]) -> Iterator[str]:
    for trace in rows:
        full = store.get_trace(project_id, trace.trace_id)
        if full is not None:
            yield full.model_dump_json() + "\n"


def _chunks(pieces: Iterator[str]) -> Iterator[bytes]:
    """``pieces`` gathered into chunks of about ``CHUNK`` bytes."""
    parts: list[str] = []
    size = 0
    for piece in pieces:
        parts.append(piece)
        size += len(piece)
        if size >= CHUNK:
            yield "".join(parts).encode()
            parts, size = [], 0
    if parts:
        yield "".join(parts).encode()
