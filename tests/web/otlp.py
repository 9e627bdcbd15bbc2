"""Build OTLP/protobuf export requests with explicit ids and times, for the UI tests.

The tests fill the server through the real OTLP/HTTP path, exactly as an exporter
does; explicit timestamps make the expected totals and orderings exact.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tests.otlp import key_values

MS = 1_000_000  # nanoseconds


@dataclass
class SpanSpec:
    name: str
    start_ns: int
    end_ns: int
    trace_id: str = ""
    span_id: str = field(default_factory=lambda: secrets.token_hex(8))
    parent_span_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # status message of an ERROR status
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)

    def proto(self) -> Span:
        span = Span(
            trace_id=bytes.fromhex(self.trace_id),
            span_id=bytes.fromhex(self.span_id),
            name=self.name,
            kind=Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=self.start_ns,
            end_time_unix_nano=self.end_ns,
            attributes=key_values(self.attributes),
            events=[
                Span.Event(name=n, time_unix_nano=t, attributes=key_values(a))
                for n, t, a in self.events
            ],
        )
        if self.parent_span_id:
            span.parent_span_id = bytes.fromhex(self.parent_span_id)
        if self.error is not None:
            span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=self.error))
        return span


def export_body(spans: list[SpanSpec]) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={"attributes": key_values({"service.name": "ui-tests"})},
                scope_spans=[ScopeSpans(spans=[s.proto() for s in spans])],
            )
        ]
    )
    return request.SerializeToString()


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


def new_trace_id() -> str:
    return secrets.token_hex(16)
