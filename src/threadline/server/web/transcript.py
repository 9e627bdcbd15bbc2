"""A session as a conversation: each trace becomes one turn of chat messages.

A turn's messages come from its LLM spans when they carry chat messages (the new
user message(s) of the first call, the reply of the last call), otherwise from the
root span's input and output. Chat histories repeat earlier turns, so only what
follows the last assistant message of the first call counts as this turn's input.
The messages are read in the one shape ingest gives every convention's chat messages
(``ingest.messages``), so this module knows no convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from threadline.server.model import SessionDetail, Span, TraceDetail
from threadline.server.web.present import Message, messages, pretty


@dataclass(frozen=True)
class Turn:
    index: int
    trace: TraceDetail
    said: list[Message]  # the user's side of the turn
    replied: list[Message]  # the app's side
    errors: list[str]
    idle_before_ms: float | None  # since the previous turn ended; None for the first
    offset_pct: float  # position on the session timeline
    width_pct: float


def _root(spans: list[Span]) -> Span | None:
    ids = {s.span_id for s in spans}
    for span in spans:
        if span.parent_span_id is None or span.parent_span_id not in ids:
            return span
    return spans[0] if spans else None


def _plain(value: Any, role: str) -> list[Message]:
    if value is None or value == "":
        return []
    found = messages(value)
    if found:
        return found
    # {"message": "hi"} reads better as "hi" in a chat bubble.
    if isinstance(value, dict) and len(value) == 1:
        (only,) = value.values()
        if isinstance(only, str):
            return [Message(role=role, text=only)]
    return [Message(role=role, text=pretty(value))]


def _new_input(history: list[Message]) -> list[Message]:
    last_reply = max(
        (i for i, m in enumerate(history) if m.role in ("assistant", "model")), default=-1
    )
    fresh = [m for m in history[last_reply + 1 :] if m.role != "system"]
    return fresh or [m for m in history if m.role == "user"][-1:]


def turn_messages(trace: TraceDetail) -> tuple[list[Message], list[Message]]:
    chat = [s for s in trace.spans if messages(s.input)]
    root = _root(trace.spans)
    said: list[Message] = _new_input(messages(chat[0].input) or []) if chat else []
    replied: list[Message] = []
    for span in reversed(chat):
        replied = messages(span.output) or []
        if replied:
            break
    if not said and root is not None:
        said = _plain(root.input, "user")
    if not replied and root is not None:
        replied = _plain(root.output, "assistant")
    return said, replied


def _errors(trace: TraceDetail) -> list[str]:
    found = []
    for span in trace.spans:
        if span.status != "error":
            continue
        detail = span.status_message or next(
            (
                str(e.attributes.get("exception.message", ""))
                for e in span.events
                if e.name == "exception"
            ),
            "",
        )
        found.append(f"{span.name}: {detail}" if detail else span.name)
    return found


def build_turns(session: SessionDetail, traces: list[TraceDetail]) -> list[Turn]:
    """``traces``: the session's traces in start order, with their spans."""
    start = session.start_time.timestamp()
    total = max(session.end_time.timestamp() - start, 1e-9)
    turns = []
    previous_end = None
    for index, trace in enumerate(traces, 1):
        said, replied = turn_messages(trace)
        idle = None
        if previous_end is not None:
            idle = max(0.0, (trace.start_time - previous_end).total_seconds() * 1000)
        previous_end = max(previous_end or trace.end_time, trace.end_time)
        offset = (trace.start_time.timestamp() - start) / total * 100
        width = max(trace.duration_ms / 1000 / total * 100, 0.4)
        turns.append(
            Turn(
                index,
                trace,
                said,
                replied,
                _errors(trace),
                idle,
                round(offset, 3),
                round(min(width, 100 - offset), 3),
            )
        )
    return turns
