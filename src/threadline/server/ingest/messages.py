"""Chat messages, whatever convention sent them, in one shape.

Every convention spells a chat differently: the GenAI semantic conventions send JSON
messages made of typed ``parts``; OpenLLMetry flattens messages into indexed attributes
(``gen_ai.prompt.0.role``); OpenInference does the same one level deeper
(``llm.input_messages.0.message.role``); SDKs that record a function's arguments send
OpenAI-style message lists. Ingest turns all of them into one list of messages, so the
API and the transcript read a single shape:

    {"role": str,                 # system, user, assistant, tool, ...
     "content": str,              # the text; other parts as JSON text
     "tool_calls": [{"id": str | None, "name": str, "arguments": str}],  # if any
     "tool_call_id": str,         # on a tool result, if known
     "name": str,                 # if the source named the speaker
     "finish_reason": str}        # on an output message, if known

Only ``role`` and ``content`` are always there. The functions are pure and idempotent:
a list already in this shape comes back unchanged. Precedence between the conventions
is in ``conventions`` (``INPUT_MESSAGES``, ``OUTPUT_MESSAGES``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from threadline.server import jsontext
from threadline.server.ingest import conventions as cv
from threadline.server.jsontext import loads_bounded

Message = dict[str, Any]

# Message JSON nested deeper than this is not read as messages (it stays the payload).
_MAX_JSON_DEPTH = 32


# A chat input or output as ingest stores it: the message list as JSON text, and the
# attribute holding exactly that text when the source already sent this shape (stores
# then keep the text once; see ``SpanRecord.input_source``).
Stored = tuple[str, str | None]


def input_messages(attrs: Mapping[str, Any]) -> list[Message] | None:
    """The chat messages a span sent to the model, from its message attributes."""
    found = _from_attributes(attrs, key_text(attrs), cv.INPUT_MESSAGES, _INPUT_PREFIXES)
    return _with_instructions(attrs, found[0] if found else None)


def output_messages(attrs: Mapping[str, Any]) -> list[Message] | None:
    """The chat messages a span received from the model, from its message attributes."""
    found = _from_attributes(attrs, key_text(attrs), cv.OUTPUT_MESSAGES, _OUTPUT_PREFIXES)
    return found[0] if found else None


def stored_input(attrs: Mapping[str, Any], keys: str) -> Stored | None:
    """``input_messages`` as stored, or None when the span carries no chat input
    (``keys`` is ``key_text(attrs)``)."""
    found = _from_attributes(attrs, keys, cv.INPUT_MESSAGES, _INPUT_PREFIXES)
    chat = _with_instructions(attrs, found[0] if found else None)
    if not chat:
        return None
    if found and found[0] is chat and found[1] is not None:
        return found[1]
    return json.dumps(chat), None


def stored_output(attrs: Mapping[str, Any], keys: str) -> Stored | None:
    """``output_messages`` as stored, or None when the span carries no chat output
    (``keys`` is ``key_text(attrs)``)."""
    found = _from_attributes(attrs, keys, cv.OUTPUT_MESSAGES, _OUTPUT_PREFIXES)
    if not found:
        return None
    return found[1] if found[1] is not None else (json.dumps(found[0]), None)


def stored_payload(key: str, text: str) -> Stored | None:
    """A payload attribute's text as stored messages, when it *is* chat messages."""
    found = _parse_messages(text)
    if not found:
        return None
    chat, unchanged = found
    return (text, key) if unchanged else (json.dumps(chat), None)


def _parse_messages(text: str) -> tuple[list[Message], bool] | None:
    """The messages in ``text``, and whether ``text`` already is them in this shape."""
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
        return value, True  # ``from_value`` would only rebuild an equal copy of it
    found = from_value(value)
    return (found, found == value) if found else None


def from_value(value: Any) -> list[Message] | None:
    """The messages of a parsed payload when it *is* chat messages: a list of messages
    (or of OpenAI choices), one message, or an OpenAI-style response with ``choices``.
    Anything else (function arguments, a request body) is not."""
    if isinstance(value, dict):
        choices = value.get("choices")
        if isinstance(choices, list) and choices:
            found = [c.get("message") for c in choices if isinstance(c, dict)]
            return from_value([m for m in found if m])
        if _looks_like_message(value):
            return [_message(value)]
        return None
    if isinstance(value, list) and value:
        items = [_unwrap(m, "message") for m in value]
        if all(_is_message(m) for m in items):
            return [_message(m) for m in items]
    if isinstance(value, list) and value and all(_is_choice(c) for c in value):
        # OpenAI's ``choices`` themselves, as lmnr's OpenAI instrumentation sends them in
        # ``gen_ai.output.messages``: the finish reason sits beside each message.
        return [_message({"finish_reason": c.get("finish_reason"), **c["message"]}) for c in value]
    return None


def _is_choice(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("message"), dict)
        and (_looks_like_message(item["message"]))
    )


# --- sources -------------------------------------------------------------------------


def _from_attributes(
    attrs: Mapping[str, Any], keys: str, json_keys: tuple[str, ...], prefixes: Prefixes
) -> tuple[list[Message], Stored | None] | None:
    """The first source's messages, and their stored form when the source attribute
    already holds exactly them."""
    for key in json_keys:
        value = attrs.get(key)
        if isinstance(value, str):
            parsed = _parse_messages(value)
            if parsed:
                return parsed[0], ((value, key) if parsed[1] else None)
        elif isinstance(value, list):
            found = from_value(value)
            if found:
                return found, None
    if not may_have_key_starting_with(keys, prefixes):
        return None  # the common case
    for prefix in prefixes.prefixes:
        indexed = _indexed(attrs, prefix)
        if indexed and all(_looks_like_message(m) for m in indexed):
            return [_message(m) for m in indexed], None
    return None


class Prefixes:
    """Key prefixes, and the same each after a newline for ``may_have_key_starting_with``."""

    __slots__ = ("needles", "prefixes")

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes
        self.needles = tuple("\n" + prefix for prefix in prefixes)


_INPUT_PREFIXES = Prefixes(cv.INPUT_MESSAGE_PREFIXES)
_OUTPUT_PREFIXES = Prefixes(cv.OUTPUT_MESSAGE_PREFIXES)


def key_text(attrs: Mapping[str, Any]) -> str:
    """The keys of ``attrs`` as one text, each after a newline.

    Whether some key starts with a prefix is then one search of this text per prefix,
    in C. Testing each key instead costs a ``startswith`` call per key and prefix set,
    and on Python 3.11 such a call spends hundreds of instructions parsing its
    arguments alone; every span asks this several times and almost never finds one.
    """
    return "\n" + "\n".join(attrs)


def may_have_key_starting_with(keys: str, prefixes: Prefixes) -> bool:
    """False when no key of ``keys`` (a ``key_text``) starts with one of ``prefixes``.

    True can be wrong when a key holds a newline followed by a prefix: callers test
    the keys themselves when it is True, so it only costs them that test."""
    for needle in prefixes.needles:  # noqa: SIM110 - a loop is cheaper than any() here
        if needle in keys:
            return True
    return False


def _with_instructions(
    attrs: Mapping[str, Any], found: list[Message] | None
) -> list[Message] | None:
    """GenAI's system instructions put in front of the input messages, unless the source
    already put them there. Only in front of messages: a span carrying instructions
    alone (pydantic-ai's agent span) sent no chat, and its input is not the system
    prompt, which would then stand for what the user said."""
    if not found or cv.SYSTEM_INSTRUCTIONS not in attrs:
        return found  # most spans: no call made to find none
    instructions = _system_instructions(attrs)
    if instructions is None or found[0]["role"] == "system":
        return found
    return [instructions, *found]


def _system_instructions(attrs: Mapping[str, Any]) -> Message | None:
    """``gen_ai.system_instructions`` (a JSON list of parts, or text) as a system message."""
    value = attrs.get(cv.SYSTEM_INSTRUCTIONS)
    if isinstance(value, str) and value.startswith(("[", "{")):
        try:
            value = loads_bounded(value, _MAX_JSON_DEPTH)
        except ValueError:
            pass
    if value is None or value == "" or value == []:
        return None
    return _message({"role": "system", "parts": value if isinstance(value, list) else [value]})


def _indexed(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Attributes ``<prefix><N>.<path>`` nested back into a list of dicts, so that
    ``gen_ai.prompt.0.tool_calls.1.name`` becomes ``[{"tool_calls": [.., {"name"}]}]``."""
    tree: dict[str, Any] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        path = key[len(prefix) :].split(".")
        if not path[0].isdigit() or len(path) < 2:
            continue
        node = tree
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # "a.b" and "a.b.c" both set: keep the first
                break
            node = child
        else:
            node.setdefault(path[-1], value)
    as_list = _lists(tree)
    return as_list if isinstance(as_list, list) else []


def _lists(node: Any) -> Any:
    """Dicts whose keys are all indexes become lists, in index order."""
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _lists(v) for k, v in node.items()}


# --- one message ---------------------------------------------------------------------


def _unwrap(item: Any, level: str) -> Any:
    """OpenInference nests each item one level down (``message``, ``tool_call``...)."""
    if type(item) is dict and len(item) == 1 and type(item.get(level)) is dict:
        return item[level]
    return item


def _looks_like_message(item: Any) -> bool:
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


def _message(item: dict[str, Any]) -> Message:
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
        value = loads_bounded(text, _MAX_JSON_DEPTH)
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
