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
import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

from threadline.server.errors import BadRequest
from threadline.server.model import Session, SessionQuery, Trace, TraceQuery
from threadline.server.session_activity import mark_activity
from threadline.server.store import Store

T = TypeVar("T")
Row = TypeVar("Row", Session, Trace)
ExportFormat = Literal["csv", "jsonl"]
PAGE = 500
# With spans: sessions whose traces are looked up together, and traces read together.
SESSION_GROUP = 100
TRACE_BATCH = 50
CHUNK = 64 * 1024
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}

# Every field the API gives, those it computes (the previews' text) last: a column
# added never moves another.
SESSION_COLUMNS = [*Session.model_fields, *Session.model_computed_fields]
TRACE_COLUMNS = [*Trace.model_fields, *Trace.model_computed_fields]


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
    rows = _pages(store, lambda q: store.list_traces(project_id, q), query)
    if fmt == "csv":
        return _chunks(_csv(TRACE_COLUMNS, rows))
    if include_spans:
        return _chunks(_trace_lines_with_spans(store, project_id, rows))
    return _chunks(_json_lines(rows))


# --- rows -----------------------------------------------------------------------------


def _pages(store: Store, list_page: Callable[[Any], Any], query: Any) -> Iterator[Any]:
    query = query.model_copy(update={"limit": PAGE, "cursor": None})
    while True:
        # Each page is read once: kept out of the store's page cache, which would
        # otherwise hold a whole list's rows after a large export (docs/benchmarks.md).
        with store.reading_once():
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

    return _pages(store, page, query)


# --- formats --------------------------------------------------------------------------


# A spreadsheet opening the file runs a cell that starts with one of these as a formula
# (``=HYPERLINK(...)``, ``=cmd|...``, DDE): text that anyone who can send a span or an
# end user can type.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value  # shown as text; JSON Lines keeps the value exactly
    return value


def _csv(columns: list[str], rows: Iterator[Row]) -> Iterator[str]:
    """A header, then one record a row: lists and maps (user ids, tags, metadata,
    scores) as JSON text, empty for null, and text that a spreadsheet would run as a
    formula behind a ``'`` (docs/api.md)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        values = row.model_dump(mode="json")  # a cost to the picodollar (model.Cost)
        writer.writerow([_cell(values[c]) for c in columns])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _json_lines(rows: Iterator[Row]) -> Iterator[str]:
    for row in rows:
        yield row.model_dump_json() + "\n"


def _session_lines_with_spans(
    store: Store, project_id: int, rows: Iterator[Session]
) -> Iterator[str | bytes]:
    """Each session's line with its traces' details, read ``TRACE_BATCH`` traces at a
    time (the traces of several short sessions together; a long session's in batches
    of its own, so it never sits in memory whole)."""
    for group in _batched(rows, SESSION_GROUP):
        members = store.session_trace_ids(project_id, [s.session_id for s in group])
        pending: list[tuple[Session, list[str]]] = []
        count = 0
        for session in group:
            ids = members.get(session.session_id, [])
            if len(ids) > TRACE_BATCH:
                yield from _session_lines(store, project_id, pending)
                pending, count = [], 0
                yield from _long_session_line(store, project_id, session, ids)
                continue
            pending.append((session, ids))
            count += len(ids)
            if count >= TRACE_BATCH:
                yield from _session_lines(store, project_id, pending)
                pending, count = [], 0
        yield from _session_lines(store, project_id, pending)


def _session_head(session: Session) -> bytes:
    return b'{"session":' + session.model_dump_json().encode() + b',"traces":['


def _session_lines(
    store: Store, project_id: int, sessions: list[tuple[Session, list[str]]]
) -> Iterator[bytes]:
    if not sessions:
        return
    found = store.trace_details_json(project_id, [t for _, ids in sessions for t in ids])
    for session, ids in sessions:
        yield _session_head(session)
        # A trace deleted meanwhile is left out.
        yield from _separated(found[t] for t in ids if t in found)
        yield b"]}\n"


def _long_session_line(
    store: Store, project_id: int, session: Session, ids: list[str]
) -> Iterator[bytes]:
    yield _session_head(session)
    yield from _separated(_details_in_batches(store, project_id, ids))
    yield b"]}\n"


def _details_in_batches(store: Store, project_id: int, ids: list[str]) -> Iterator[bytes]:
    for batch in _batched(iter(ids), TRACE_BATCH):
        found = store.trace_details_json(project_id, batch)
        yield from (found[trace_id] for trace_id in batch if trace_id in found)


def _trace_lines_with_spans(
    store: Store, project_id: int, rows: Iterator[Trace]
) -> Iterator[bytes]:
    for group in _batched(rows, TRACE_BATCH):
        ids = [t.trace_id for t in group]
        found = store.trace_details_json(project_id, ids)
        for trace_id in ids:
            if trace_id in found:
                yield found[trace_id]
                yield b"\n"


def _separated(items: Iterator[bytes]) -> Iterator[bytes]:
    """``items`` with a comma between each two, as pieces: joined once, by ``_chunks``
    (a joined line was copied once more, and a trace's JSON is most of the export)."""
    for n, item in enumerate(items):
        if n:
            yield b","
        yield item


def _batched(items: Iterator[T], size: int) -> Iterator[list[T]]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def _chunks(pieces: Iterator[str] | Iterator[str | bytes]) -> Iterator[bytes]:
    """``pieces`` gathered into chunks of about ``CHUNK`` bytes."""
    parts: list[bytes] = []
    size = 0
    for piece in pieces:
        data = piece.encode() if isinstance(piece, str) else piece
        parts.append(data)
        size += len(data)
        if size >= CHUNK:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)
