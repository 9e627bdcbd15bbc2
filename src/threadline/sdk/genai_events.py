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
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider as ApiLoggerProvider
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

logger = logging.getLogger("threadline")

INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
CHOICE_EVENT = "gen_ai.choice"
_MESSAGE_EVENT_PREFIX = "gen_ai."
_MESSAGE_EVENT_SUFFIX = ".message"

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
    name = record.event_name or ""
    if name == CHOICE_EVENT:
        key, chat = OUTPUT_MESSAGES, output_message(record.body)
    elif name.startswith(_MESSAGE_EVENT_PREFIX) and name.endswith(_MESSAGE_EVENT_SUFFIX):
        role = name[len(_MESSAGE_EVENT_PREFIX) : -len(_MESSAGE_EVENT_SUFFIX)]
        if not role or "." in role:
            return
        key, chat = INPUT_MESSAGES, input_message(role, record.body)
    else:
        return
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


# --- the instrumentor's event bodies as GenAI messages ---------------------------------
#
# A message event's body: ``{"content": str | [content parts]}``, an assistant's
# ``{"tool_calls": [{"id", "type", "function": {"name", "arguments"}}]}``, a tool
# result's ``{"content", "id"}`` (the call it answers); no body when there was nothing
# to say (content capture off). A choice: ``{"index", "finish_reason", "message":
# {"role", "content", "tool_calls"}}``. Messages become ``{"role", "parts": [...]}``
# with parts ``text`` / ``tool_call`` / ``tool_call_response`` / ``uri``, other
# OpenAI content parts passed on as they are (the conventions' generic part).


def input_message(role: str, body: Any) -> dict[str, Any]:
    body = body if isinstance(body, Mapping) else {}
    parts: list[Any]
    if role == "tool":
        response = body.get("content")
        part: dict[str, Any] = {"type": "tool_call_response"}
        if body.get("id") is not None:
            part["id"] = body["id"]
        if response is not None:
            part["response"] = response
        parts = [part]
    else:
        parts = content_parts(body.get("content")) + tool_call_parts(body.get("tool_calls"))
    return {"role": role, "parts": parts}


def output_message(body: Any) -> dict[str, Any]:
    body = body if isinstance(body, Mapping) else {}
    said = body.get("message")
    said = said if isinstance(said, Mapping) else {}
    chat: dict[str, Any] = {
        "role": said.get("role") or "assistant",
        "parts": content_parts(said.get("content")) + tool_call_parts(said.get("tool_calls")),
    }
    if isinstance(body.get("finish_reason"), str):
        chat["finish_reason"] = body["finish_reason"]
    return chat


def content_parts(content: Any) -> list[Any]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if not isinstance(content, list | tuple):
        return [{"type": "text", "content": str(content)}]
    parts: list[Any] = []
    for item in content:
        kind = item.get("type") if isinstance(item, Mapping) else None
        if isinstance(item, str):
            parts.append({"type": "text", "content": item})
        elif kind == "text" and isinstance(item, Mapping):
            parts.append({"type": "text", "content": item.get("text", "")})
        elif kind == "image_url" and isinstance(item, Mapping):
            image = item.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            parts.append({"type": "uri", "modality": "image", "uri": url})
        else:
            parts.append(dict(item) if isinstance(item, Mapping) else item)
    return parts


def tool_call_parts(calls: Any) -> list[dict[str, Any]]:
    if not isinstance(calls, list | tuple):
        return []
    parts = []
    for call in calls:
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        function = function if isinstance(function, Mapping) else {}
        part: dict[str, Any] = {"type": "tool_call", "id": call.get("id")}
        part["name"] = function.get("name", "")
        if "arguments" in function:
            part["arguments"] = function["arguments"]
        parts.append(part)
    return parts
