"""Chat messages in one shape, whatever convention sent them.

Ingest reads every convention's chat (``ingest/messages.py``) into this shape; the API,
the previews and the transcripts read it back with ``from_value``:

    {"role": str,                 # system, user, assistant, tool, ...
     "content": str,              # the text; other parts as JSON text
     "tool_calls": [{"id": str | None, "name": str, "arguments": str}],  # if any
     "tool_call_id": str,         # on a tool result, if known
     "name": str,                 # if the source named the speaker
     "finish_reason": str}        # on an output message, if known

Only ``role`` and ``content`` are always there. The functions are pure and idempotent:
a list already in this shape comes back unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from threadline.server import jsontext
from threadline.server.jsontext import loads_bounded

Message = dict[str, Any]

# Message JSON nested deeper than this is not read as messages (it stays the payload).
MAX_JSON_DEPTH = 32


def parse_messages(text: str) -> tuple[list[Message], bool, bool] | None:
    """The messages in ``text``, whether ``text`` already is them in this shape, and
    whether they are its parse itself (``jsontext.loads(text)``, keys in its order)."""
    # Only text that can hold a message is parsed: most payloads are not chats. (The
    # first character compared rather than ``startswith``: see ``key_text``.)
    if text[:1] not in ("[", "{") or '"role"' not in text:
        return None
    try:
        # The result's depth is fixed by the shape (anything deeper becomes JSON text),
        # so no depth bound is needed beyond the parser's own stack.
        value = jsontext.loads(text)
    except (ValueError, RecursionError):
        return None
    if _in_shape(value):
        return value, True, True  # ``from_value`` would only rebuild an equal copy of it
    found = from_value(value)
    return (found, found == value, False) if found else None


def message_text(message: Message) -> str:
    """What a message says, as shown: its text, and a line for each tool call."""
    lines = [message["content"]] if message["content"] else []
    lines += [f"→ {call['name']}({call['arguments']})" for call in message.get("tool_calls", [])]
    return "\n".join(lines)


def from_value(value: Any) -> list[Message] | None:
    """The messages of a parsed payload when it *is* chat messages: a list of messages
    (or of OpenAI choices), one message, or an OpenAI-style response with ``choices``.
    Anything else (function arguments, a request body) is not."""
    if isinstance(value, dict):
        choices = value.get("choices")
        if isinstance(choices, list) and choices:
            found = [c.get("message") for c in choices if isinstance(c, dict)]
            return from_value([m for m in found if m])
        if looks_like_message(value):
            return [message(value)]
        return None
    if isinstance(value, list) and value:
        items = [_unwrap(m, "message") for m in value]
        if all(_is_message(m) for m in items):
            return [message(m) for m in items]
    if isinstance(value, list) and value and all(_is_choice(c) for c in value):
        # OpenAI's ``choices`` themselves, as lmnr's OpenAI instrumentation sends them in
        # ``gen_ai.output.messages``: the finish reason sits beside each message.
        return [message({"finish_reason": c.get("finish_reason"), **c["message"]}) for c in value]
    return None


def _is_choice(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("message"), dict)
        and (looks_like_message(item["message"]))
    )


# --- one message ---------------------------------------------------------------------


def _unwrap(item: Any, level: str) -> Any:
    """OpenInference nests each item one level down (``message``, ``tool_call``...)."""
    if type(item) is dict and len(item) == 1 and type(item.get(level)) is dict:
        return item[level]
    return item


def looks_like_message(item: Any) -> bool:
    return _is_message(_unwrap(item, "message"))


def _is_message(item: Any) -> bool:
    """``item`` (unwrapped) has a role: a message of any convention."""
    return type(item) is dict and type(role := item.get("role")) is str and role != ""


# A message with only these keys, its content text, is already in the shape.
_PLAIN_KEYS = frozenset(("role", "content"))
# ... in the order ``_message`` writes them.
_PLAIN_ORDER = ("role", "content")


def _in_shape(value: Any) -> bool:
    """``value`` is a list of messages exactly as ``from_value`` would return them.

    Most chats arrive so; checking is much cheaper than rebuilding every message only
    to find the copy equal to the original."""
    return type(value) is list and len(value) > 0 and all(_is_plain(m) for m in value)


def _is_plain(item: Any) -> bool:
    """A message ``_message`` copies as it is: role and text content only, in that key
    order (the order shows once a system prompt put first makes the list re-serialised)."""
    return (
        type(item) is dict
        and tuple(item) == _PLAIN_ORDER
        and _is_message(item)
        and type(content := item["content"]) is str
        and content[:1] != "["
    )


def message(item: dict[str, Any]) -> Message:
    item = _unwrap(item, "message")
    content = item.get("content")
    if item.keys() <= _PLAIN_KEYS and isinstance(content, str) and content[:1] != "[":
        return {"role": item["role"], "content": content}
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    tool_call_id = item.get("tool_call_id")
    # The content: text (OpenAI, OpenLLMetry), parts (GenAI, OpenAI multimodal,
    # Anthropic blocks), or OpenInference's "contents" list.
    body = item.get("content")
    if body is None:
        body = item.get("parts", item.get("contents"))
    if isinstance(body, str) and body.startswith("["):
        parts = _json_parts(body)  # OpenLLMetry sends multimodal content as JSON text
        body = parts if parts is not None else body
    for part in body if isinstance(body, list) else [body]:
        part = _unwrap(part, "message_content")
        kind = part.get("type") if isinstance(part, dict) else None
        if part is None:
            continue
        if isinstance(part, str):
            texts.append(part)
        elif kind in ("tool_call", "tool_use", "function_call"):
            tool_calls.append(_tool_call(part))
        elif kind in ("tool_call_response", "tool_result"):
            tool_call_id = tool_call_id or part.get("id") or part.get("tool_use_id")
            result = part.get("response", part.get("content"))
            texts.append(result if isinstance(result, str) else _json_text(result))
        elif isinstance(part, dict) and isinstance(
            text := part.get("text", part.get("content")), str
        ):
            texts.append(text)
        else:
            texts.append(_json_text(part))
    for call in item.get("tool_calls") or []:
        tool_calls.append(_tool_call(_unwrap(call, "tool_call")))
    message: Message = {"role": item["role"], "content": "\n".join(texts)}
    if tool_calls:
        message["tool_calls"] = tool_calls
    for key, value in (
        ("tool_call_id", tool_call_id),
        ("name", item.get("name")),
        ("finish_reason", item.get("finish_reason")),
    ):
        if isinstance(value, str) and value:
            message[key] = value
    return message


def _tool_call(call: Any) -> dict[str, Any]:
    """OpenAI ``{"id", "function": {"name", "arguments"}}``, GenAI ``{"id", "name",
    "arguments"}``, Anthropic ``{"id", "name", "input"}``: one form, arguments as text."""
    if not isinstance(call, dict):
        return {"id": None, "name": "", "arguments": _json_text(call)}
    function = call.get("function")
    if not isinstance(function, dict):
        function = call
    arguments = function.get("arguments", call.get("input"))
    call_id = call.get("id")
    return {
        "id": str(call_id) if call_id is not None else None,
        "name": str(function.get("name") or ""),
        "arguments": arguments if isinstance(arguments, str) else _json_text(arguments),
    }


def _json_parts(text: str) -> list[Any] | None:
    try:
        value = loads_bounded(text, MAX_JSON_DEPTH)
    except ValueError:
        return None
    if (
        isinstance(value, list)
        and value
        and all(isinstance(p, dict) and "type" in p for p in value)
    ):
        return value
    return None


def _json_text(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=str)
