"""A session as a conversation: each trace becomes one turn of chat messages.

What a turn said and replied is read by ``server/conversation.py``, which the
evaluators' judge prompts share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from threadline.server.conversation import Message, trace_errors, turn_messages
from threadline.server.model import SessionDetail, TraceDetail


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


def build_turns(
    session: SessionDetail,
    traces: list[TraceDetail],
    first_index: int = 1,
    previous_end: datetime | None = None,
) -> list[Turn]:
    """``traces``: consecutive traces of the session in start order, with their spans,
    the first of them turn number ``first_index``; ``previous_end``: the end of the turn
    before them, if any (a page of turns after the first)."""
    start = session.start_time.timestamp()
    total = max(session.end_time.timestamp() - start, 1e-9)
    turns = []
    for index, trace in enumerate(traces, first_index):
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
                trace_errors(trace),
                idle,
                round(offset, 3),
                round(min(width, 100 - offset), 3),
            )
        )
    return turns
