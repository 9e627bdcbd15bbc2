"""Chat messages, whatever convention sent them, in one shape.

Every convention spells a chat differently: the GenAI semantic conventions send JSON
messages made of typed ``parts``; OpenLLMetry flattens messages into indexed attributes
(``gen_ai.prompt.0.role``); OpenInference does the same one level deeper
(``llm.input_messages.0.message.role``); SDKs that record a function's arguments send
OpenAI-style message lists. Ingest turns all of them into one list of messages, in the
shape of ``chat_messages`` (shared with the API and the transcripts). Precedence
between the conventions is in ``conventions`` (``INPUT_MESSAGES``, ``OUTPUT_MESSAGES``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from threadline.server.chat_messages import (
    MAX_JSON_DEPTH,
    Message,
    from_value,
    looks_like_message,
    message,
    parse_messages,
)
from threadline.server.ingest import conventions as cv
from threadline.server.jsontext import loads_bounded

# A chat input or output as ingest stores it: the message list as JSON text, the
# attribute holding exactly that text when the source already sent this shape (stores
# then keep the text once; see ``SpanRecord.input_source``), and the messages when the
# text is their JSON as they are (made by ``json.dumps``, or parsed into them):
# ``SpanRecord.input_messages``, read later rather than parsed again.
Stored = tuple[str, str | None, list[Message] | None]


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
    return json.dumps(chat), None, chat


def stored_output(attrs: Mapping[str, Any], keys: str) -> Stored | None:
    """``output_messages`` as stored, or None when the span carries no chat output
    (``keys`` is ``key_text(attrs)``)."""
    found = _from_attributes(attrs, keys, cv.OUTPUT_MESSAGES, _OUTPUT_PREFIXES)
    if not found:
        return None
    return found[1] if found[1] is not None else (json.dumps(found[0]), None, found[0])


def stored_payload(key: str, text: str) -> Stored | None:
    """A payload attribute's text as stored messages, when it *is* chat messages."""
    found = parse_messages(text)
    if not found:
        return None
    chat, unchanged, parsed = found
    if unchanged:
        return text, key, chat if parsed else None
    return json.dumps(chat), None, chat


# --- sources -------------------------------------------------------------------------


def _from_attributes(
    attrs: Mapping[str, Any], keys: str, json_keys: tuple[str, ...], prefixes: Prefixes
) -> tuple[list[Message], Stored | None] | None:
    """The first source's messages, and their stored form when the source attribute
    already holds exactly them."""
    for key in json_keys:
        value = attrs.get(key)
        if isinstance(value, str):
            parsed = parse_messages(value)
            if parsed:
                chat, unchanged, as_parsed = parsed
                return chat, ((value, key, chat if as_parsed else None) if unchanged else None)
        elif isinstance(value, list):
            found = from_value(value)
            if found:
                return found, None
    if not may_have_key_starting_with(keys, prefixes):
        return None  # the common case
    for prefix in prefixes.prefixes:
        indexed = _indexed(attrs, prefix)
        if indexed and all(looks_like_message(m) for m in indexed):
            return [message(m) for m in indexed], None
    return None


def roleless_input(attrs: Mapping[str, Any], keys: str) -> Stored | None:
    """OpenLLMetry's indexed prompt sent without roles, as stored; for a span nothing
    else gave an input: a message without a role is otherwise no message."""
    return _roleless(attrs, keys, _INPUT_PREFIXES)


def roleless_output(attrs: Mapping[str, Any], keys: str) -> Stored | None:
    """``roleless_input``'s twin: the completions without a role, from the model."""
    return _roleless(attrs, keys, _OUTPUT_PREFIXES)


def _roleless(attrs: Mapping[str, Any], keys: str, prefixes: Prefixes) -> Stored | None:
    if not may_have_key_starting_with(keys, prefixes):
        return None  # the common case
    for prefix in prefixes.prefixes:
        indexed = [_with_role(m, prefixes.role) for m in _indexed(attrs, prefix)]
        if indexed and all(looks_like_message(m) for m in indexed):
            chat = [message(m) for m in indexed]
            return json.dumps(chat), None, chat
    return None


def _with_role(item: Any, role: str) -> Any:
    """An indexed message sent without a role (``cv.INPUT_ROLE_KEY``), given one."""
    if type(item) is not dict or "role" in item:
        return item
    said = item.get(cv.INPUT_ROLE_KEY)
    if len(item) == 1 and isinstance(said, str):
        return {"role": "user", "content": said}
    return {"role": role, **item} if "content" in item else item


class Prefixes:
    """Key prefixes, and the same each after a newline for ``may_have_key_starting_with``;
    ``role``: that of a message under them sent without one."""

    __slots__ = ("needles", "prefixes", "role")

    def __init__(self, prefixes: tuple[str, ...], role: str = "") -> None:
        self.prefixes = prefixes
        self.needles = tuple("\n" + prefix for prefix in prefixes)
        self.role = role


_INPUT_PREFIXES = Prefixes(cv.INPUT_MESSAGE_PREFIXES, cv.INPUT_DEFAULT_ROLE)
_OUTPUT_PREFIXES = Prefixes(cv.OUTPUT_MESSAGE_PREFIXES, cv.OUTPUT_DEFAULT_ROLE)


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
            value = loads_bounded(value, MAX_JSON_DEPTH)
        except ValueError:
            pass
    if value is None or value == "" or value == []:
        return None
    return message({"role": "system", "parts": value if isinstance(value, list) else [value]})


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
