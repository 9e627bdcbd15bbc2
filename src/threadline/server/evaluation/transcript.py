"""The conversation a judge reads: a session's turns (or one trace) as plain text,
cut to a budget.

Each turn is read as the session page reads it (``server/conversation.py``). A
transcript longer than the budget keeps its beginning and its end, where a
conversation's problem and its outcome usually are, and says in the middle how much
was left out, so the judge knows it is not reading everything.
"""

from __future__ import annotations

from threadline.server.conversation import Message, pretty, root_span, trace_errors, turn_messages
from threadline.server.model import TraceDetail

CUT_MARKER = "[... {chars} characters of the conversation left out to fit the judge's budget ...]"


def _lines(messages: list[Message]) -> list[str]:
    return [f"{m.role}: {m.text}" for m in messages if m.text]


def turn_text(number: int, trace: TraceDetail) -> str:
    said, replied = turn_messages(trace)
    lines = [f"--- turn {number} ---", *_lines(said), *_lines(replied)]
    lines += [f"(error) {error}" for error in trace_errors(trace)]
    return "\n".join(lines)


def session_transcript(traces: list[TraceDetail], max_chars: int, left_out_turns: int = 0) -> str:
    """``traces``: the session's traces in start order, with their spans; with
    ``left_out_turns``, that many turns were not read between its two halves."""
    parts = [turn_text(n, trace) for n, trace in enumerate(traces, 1)]
    if left_out_turns:
        half = len(parts) // 2
        marker = f"[... {left_out_turns} turns left out ...]"
        parts = (
            parts[:half]
            + [marker]
            + [turn_text(n + half + left_out_turns, t) for n, t in enumerate(traces[half:], 1)]
        )
    return cut("\n\n".join(parts), max_chars)


def trace_input_output(trace: TraceDetail, max_chars: int) -> tuple[str, str]:
    """A trace's input and output as the judge reads them: its root span's payloads."""
    root = root_span(trace.spans)
    if root is None:
        return "", ""
    half = max(max_chars // 2, 1)
    return cut(pretty(root.input), half), cut(pretty(root.output), half)


def cut(text: str, max_chars: int) -> str:
    """``text`` within ``max_chars``: its head and tail around a marker saying how
    many characters were left out."""
    if len(text) <= max_chars:
        return text
    marker_room = len(CUT_MARKER) + 24
    keep = max(max_chars - marker_room, 0)
    head, tail = keep // 2, keep - keep // 2
    left_out = len(text) - head - tail
    marker = CUT_MARKER.format(chars=left_out)
    return f"{text[:head]}\n{marker}\n{text[len(text) - tail :] if tail else ''}"
