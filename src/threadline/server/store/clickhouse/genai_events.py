"""GenAI log events in the ClickHouse store (migration 0033): written waiting for their
span, or beside a span stored before them (``store/genai_events.py`` says what reads
them). Rows are never changed: an event kept beside its span after it waited is
written again as kept, and its waiting row goes with the others that waited too long.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from threadline.server.model import GenAIEvent

TABLE = "genai_events"
COLUMNS = [
    "project_id",
    "trace_id",
    "span_id",
    "event_id",
    "end_ns",
    "received_ns",
    "seq",
    "is_output",
    "attached",
    "message",
]
_READ = "trace_id, span_id, event_id, end_ns, received_ns, seq, is_output, message"

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]
Insert = Callable[[str, Sequence[Sequence[Any]], list[str]], None]


def write(
    rows: Rows, insert: Insert, project_id: int, events: Sequence[GenAIEvent]
) -> list[GenAIEvent]:
    """Store ``events``; returns those whose span is not stored yet (they wait)."""
    if not events:
        return []
    traces = sorted({event.trace_id for event in events})
    stored = {
        (trace_id, span_id)
        for trace_id, span_id in rows(
            "SELECT DISTINCT trace_id, span_id FROM spans"
            " WHERE project_id = %(project)s AND trace_id IN %(traces)s",
            {"project": project_id, "traces": traces},
        )
    }
    waiting = [e for e in events if (e.trace_id, e.span_id) not in stored]
    insert(
        TABLE,
        [_row(project_id, e, (e.trace_id, e.span_id) in stored) for e in events],
        COLUMNS,
    )
    return waiting


def attach(insert: Insert, project_id: int, events: Sequence[GenAIEvent]) -> None:
    insert(TABLE, [_row(project_id, e, True) for e in events], COLUMNS)


def of_trace(rows: Rows, project_id: int, trace_id: str) -> list[GenAIEvent]:
    return [
        _event(row)
        for row in rows(
            f"SELECT {_READ} FROM {TABLE} WHERE project_id = %(project)s"
            " AND trace_id = %(trace)s AND attached = 1",
            {"project": project_id, "trace": trace_id},
        )
    ]


def waiting(rows: Rows, received_after_ns: int) -> dict[int, list[GenAIEvent]]:
    found: dict[int, list[GenAIEvent]] = {}
    for row in rows(
        f"SELECT project_id, {_READ} FROM {TABLE}"
        " WHERE attached = 0 AND received_ns > %(after)s ORDER BY received_ns, seq",
        {"after": received_after_ns},
    ):
        found.setdefault(int(row[0]), []).append(_event(row[1:]))
    return found


def delete_waiting(rows: Rows, command: Callable[[str, dict[str, Any]], None], before: int) -> int:
    """Delete the waiting rows received before ``before``: a lightweight delete, made
    only when there is one to delete."""
    (count,) = rows(
        f"SELECT count() FROM {TABLE} WHERE attached = 0 AND received_ns < %(before)s",
        {"before": before},
    )[0]
    if count:
        command(
            f"DELETE FROM {TABLE} WHERE attached = 0 AND received_ns < %(before)s",
            {"before": before},
        )
    return int(count)


def _row(project_id: int, event: GenAIEvent, attached: bool) -> list[Any]:
    return [
        project_id,
        event.trace_id,
        event.span_id,
        event.event_id,
        event.time_ns,
        event.received_ns,
        event.seq,
        int(event.is_output),
        int(attached),
        event.message,
    ]


def _event(row: Sequence[Any]) -> GenAIEvent:
    trace_id, span_id, event_id, time_ns, received_ns, seq, is_output, message = row
    return GenAIEvent(
        trace_id=trace_id,
        span_id=span_id,
        time_ns=int(time_ns),
        received_ns=int(received_ns),
        seq=int(seq),
        is_output=bool(is_output),
        message=message,
        event_id=int(event_id),
    )
