"""Chat turns with explicit ids and times, for the UI tests: a root span and an LLM
span each (``tests.otlp`` builds them). The tests fill the server through the real
OTLP/HTTP path, exactly as an exporter does; explicit timestamps make the expected
totals and orderings exact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.otlp import SpanSpec

MS = 1_000_000  # nanoseconds


@dataclass
class Turn:
    """One chat turn: a root span, and an LLM span with chat messages unless plain."""

    trace_id: str
    question: str
    answer: str
    start_ns: int
    duration_ms: int
    input_tokens: int
    output_tokens: int
    cost: float
    error: str | None = None

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.duration_ms * MS


def turn_spans(
    turn: Turn,
    session_id: str | None,
    user_id: str | None,
    *,
    chat: bool = True,
    history: list[dict[str, str]] | None = None,
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[SpanSpec]:
    root_attrs: dict[str, Any] = {
        "threadline.span.input": json.dumps({"message": turn.question}),
        "threadline.span.output": json.dumps({"reply": turn.answer}),
    }
    if session_id:
        root_attrs["session.id"] = session_id
    if user_id:
        root_attrs["user.id"] = user_id
    if tags:
        root_attrs["threadline.tags"] = tags
    for key, value in (metadata or {}).items():
        root_attrs["threadline.metadata." + key] = value
    root = SpanSpec(
        "handle_turn",
        turn.start_ns,
        turn.end_ns,
        trace_id=turn.trace_id,
        attributes=root_attrs,
        error=turn.error,
    )
    child_start = turn.start_ns + 5 * MS
    child = SpanSpec(
        "chat gpt-4o-mini" if chat else "generate",
        child_start,
        turn.end_ns - 5 * MS,
        trace_id=turn.trace_id,
        parent_span_id=root.span_id,
    )
    child.attributes = {
        "gen_ai.usage.input_tokens": turn.input_tokens,
        "gen_ai.usage.output_tokens": turn.output_tokens,
        "gen_ai.usage.cost": turn.cost,
    }
    if chat:
        messages = [
            {"role": "system", "content": "You are a helpful support agent."},
            *(history or []),
            {"role": "user", "content": turn.question},
        ]
        child.attributes.update(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.input.messages": json.dumps(messages),
                "gen_ai.output.messages": json.dumps(
                    [{"role": "assistant", "content": turn.answer}]
                ),
            }
        )
    if turn.error:
        child.error = turn.error
        child.events = [
            (
                "exception",
                turn.end_ns - 6 * MS,
                {
                    "exception.type": "TimeoutError",
                    "exception.message": turn.error,
                    "exception.stacktrace": 'Traceback (most recent call last):\n  File "app.py", '
                    "line 42, in lookup\nTimeoutError: " + turn.error,
                },
            )
        ]
    return [root, child]
