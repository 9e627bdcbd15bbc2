"""GenAI log events in the SQLite store (migration 0038), inside the caller's
transaction or read: written waiting for their span, or beside a span stored before
them (``store/genai_events.py`` says what reads them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from threadline.server.model import GenAIEvent
from threadline.server.store.sqlite.chunked import execute_in
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.trace_keys import KEY_OF

_COLUMNS = "trace_id, span_id, event_id, time_ns, received_ns, seq, is_output, message"
_INSERT = (
    "INSERT INTO genai_events (project_id, attached, " + _COLUMNS + ")"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def write(
    conn: sqlite3.Connection, project_id: int, events: Sequence[GenAIEvent]
) -> list[GenAIEvent]:
    """Store ``events``; returns those whose span is not stored yet (they wait)."""
    stored: dict[tuple[str, str], bool] = {}
    waiting: list[GenAIEvent] = []
    rows = []
    for event in events:
        key = (event.trace_id, event.span_id)
        if key not in stored:
            stored[key] = (
                conn.execute(
                    f"SELECT 1 FROM spans WHERE trace_key = {KEY_OF} AND span_id = ?",
                    (project_id, event.trace_id, event.span_id),
                ).fetchone()
                is not None
            )
        if not stored[key]:
            waiting.append(event)
        rows.append((project_id, int(stored[key]), *_values(event)))
    conn.executemany(_INSERT, rows)
    return waiting


def attach(conn: sqlite3.Connection, project_id: int, events: Sequence[GenAIEvent]) -> None:
    """``events`` waited, and their span is stored now without them: kept beside it."""
    for event in events:
        conn.execute(
            "UPDATE genai_events SET attached = 1 WHERE project_id = ? AND trace_id = ?"
            " AND span_id = ? AND event_id = ?",
            (project_id, event.trace_id, event.span_id, event.event_id),
        )


def of_trace(conn: sqlite3.Connection, project_id: int, trace_id: str) -> list[GenAIEvent]:
    """The events kept beside the trace's spans."""
    return [
        _event(row)
        for row in conn.execute(
            f"SELECT {_COLUMNS} FROM genai_events"
            " WHERE project_id = ? AND trace_id = ? AND attached = 1",
            (project_id, trace_id),
        )
    ]


def waiting(conn: sqlite3.Connection, received_after_ns: int) -> dict[int, list[GenAIEvent]]:
    """Every project's events still waiting, received after ``received_after_ns``."""
    found: dict[int, list[GenAIEvent]] = {}
    for row in conn.execute(
        f"SELECT project_id, {_COLUMNS} FROM genai_events"
        " WHERE attached = 0 AND received_ns > ? ORDER BY received_ns, seq",
        (received_after_ns,),
    ):
        found.setdefault(row[0], []).append(_event(row[1:]))
    return found


def delete_waiting(conn: sqlite3.Connection, received_before_ns: int, limit: int) -> int:
    """Delete at most ``limit`` events that waited since before ``received_before_ns``
    (taken by their span, or whose span never came)."""
    return conn.execute(
        "DELETE FROM genai_events WHERE rowid IN (SELECT rowid FROM genai_events"
        " WHERE attached = 0 AND received_ns < ? LIMIT ?)",
        (received_before_ns, limit),
    ).rowcount


def forget_traces(conn: sqlite3.Connection, project_id: int, trace_ids: Sequence[str]) -> None:
    """The deleted traces' events go with them."""
    execute_in(
        conn,
        "DELETE FROM genai_events WHERE project_id = ? AND trace_id IN ({})",
        (project_id,),
        trace_ids,
    )


def _values(event: GenAIEvent) -> tuple[object, ...]:
    return (
        event.trace_id,
        event.span_id,
        event.event_id,
        event.time_ns,
        event.received_ns,
        event.seq,
        int(event.is_output),
        event.message,
    )


def _event(row: Sequence[Any]) -> GenAIEvent:
    trace_id, span_id, event_id, time_ns, received_ns, seq, is_output, message = row
    return GenAIEvent(
        trace_id=str(trace_id),
        span_id=str(span_id),
        time_ns=int(time_ns),
        received_ns=int(received_ns),
        seq=int(seq),
        is_output=bool(is_output),
        message=str(message),
        event_id=int(event_id),
    )
