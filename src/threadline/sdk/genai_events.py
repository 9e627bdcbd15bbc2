"""GenAI log events turned into the chat attributes of the span they describe.

OpenTelemetry's OpenAI instrumentor (``opentelemetry-instrumentation-openai-v2``, 2.x)
puts model, tokens and operation on its ``chat`` span, but the messages only as log
events: one ``gen_ai.<role>.message`` per message sent and one ``gen_ai.choice`` per
answer, each carrying the span's context. A Threadline server reads a call's messages
from its span (``gen_ai.input.messages`` / ``gen_ai.output.messages``, the current
GenAI conventions' JSON of typed parts), so this processor, on a logger provider of the
SDK's own, writes each event onto its span as it is emitted.

Why at emit time: the instrumentor emits every event while the span is still open (the
messages before the request, the choices before ``span.end()``, for a stream when it
ends), and an ended span's attributes can no longer change. Each event appends its
message to the attribute's JSON text, so a call with many messages costs one
serialisation per message, not one of the whole list per message.

A system or developer message stays in ``gen_ai.input.messages``, in its place: the
conventions keep ``gen_ai.system_instructions`` for instructions an API takes apart from
the chat history, and OpenAI's chat completions take them inside it.
"""

from __future__ import annotations

import json
import logging

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider as ApiLoggerProvider
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

from threadline.genai.events import event_message

logger = logging.getLogger("threadline")

INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"

# One encoder for every message: ``json.dumps`` with options builds a new one each call,
# which costs as much again as encoding a short message.
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


class EventsToSpanAttributes(LogRecordProcessor):
    """Writes GenAI message events onto their span; passes every record on to
    ``forward_to`` (the application's own logger provider, if it set one) unchanged."""

    def __init__(self, forward_to: ApiLoggerProvider | None = None) -> None:
        self._forward_to = forward_to

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        try:
            put_on_span(record)
        except Exception:
            logger.debug("threadline: could not record a GenAI event on its span", exc_info=True)
        if self._forward_to is not None:
            try:
                scope = log_record.instrumentation_scope
                target = self._forward_to.get_logger(
                    scope.name if scope else "threadline",
                    scope.version if scope else None,
                    scope.schema_url if scope else None,
                )
                target.emit(record)
            except Exception:
                logger.debug("threadline: could not forward a log record", exc_info=True)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def put_on_span(record: LogRecord) -> None:
    """Append the message of a GenAI event to its span's input or output, if the span
    is still open; any other record is left alone."""
    found = event_message(record.event_name or "", record.body)
    if found is None:
        return
    is_output, chat = found
    key = OUTPUT_MESSAGES if is_output else INPUT_MESSAGES
    span = trace.get_current_span(record.context) if record.context is not None else None
    if span is None or not span.is_recording():
        return
    if span.get_span_context().span_id != record.span_id:
        return  # the record names another span than its context holds: not ours to guess
    attributes = getattr(span, "attributes", None)
    sofar = attributes.get(key) if attributes is not None else None
    text = _encode(chat)
    if isinstance(sofar, str) and sofar.endswith("]") and len(sofar) > 2:
        span.set_attribute(key, f"{sofar[:-1]},{text}]")
    else:
        span.set_attribute(key, f"[{text}]")
