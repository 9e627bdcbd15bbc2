"""OpenTelemetry's GenAI log events as chat messages: shared by the SDK, which writes
them onto their span as they are emitted (``sdk/genai_events.py``), and the server,
which keeps the events an application exports over OTLP logs and joins them to their
span (``server/ingest/log_events.py``). Pure functions of plain data: no OpenTelemetry
package is imported here.

OpenTelemetry's OpenAI instrumentor (``opentelemetry-instrumentation-openai-v2``, 2.x)
sends a call's messages as events: one ``gen_ai.<role>.message`` per message sent and
one ``gen_ai.choice`` per answer, each carrying the span's context.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CHOICE_EVENT = "gen_ai.choice"
_MESSAGE_EVENT_PREFIX = "gen_ai."
_MESSAGE_EVENT_SUFFIX = ".message"


def event_message(name: str, body: Any) -> tuple[bool, dict[str, Any]] | None:
    """The chat message of the GenAI event named ``name`` with ``body``, and whether it
    is the call's output (a choice) rather than its input; None for any other event."""
    if name == CHOICE_EVENT:
        return True, output_message(body)
    if name.startswith(_MESSAGE_EVENT_PREFIX) and name.endswith(_MESSAGE_EVENT_SUFFIX):
        role = name[len(_MESSAGE_EVENT_PREFIX) : -len(_MESSAGE_EVENT_SUFFIX)]
        if role and "." not in role:
            return False, input_message(role, body)
    return None


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
