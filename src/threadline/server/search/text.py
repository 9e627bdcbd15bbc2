"""What of a span is searchable, as one text: its name, its error, the words of its input
and output (JSON strings, not keys or punctuation) and of its exception events.

Of a chat sent to a model only the turn's new messages are taken (``conversation``'s
rule: those after the last reply, but a system prompt once, in the first call): every
earlier message was the new input or the reply of an earlier call of the same
conversation, and is indexed there. Without that, each turn of a long conversation would
index the whole conversation again, the index would grow with the square of its length,
and searching inside a session would find a word in every later turn.

The same function serves the index and its deletion (a contentless index forgets a
document only when given the text it was given), so it must depend on nothing but the
stored span. Both stores index ``index_form(span_text(span))``.
"""

from __future__ import annotations

import re
from typing import Any

from threadline.server import jsontext
from threadline.server.model import SpanRecord

# A span's searchable text is bounded: an export of huge payloads must not make ingest
# slow; the first hundred thousand characters hold what anyone would search for.
MAX_INDEXED_CHARS = 100_000
_MAX_DEPTH = 32

# Scripts written without spaces between words: each character is indexed as a word of
# its own, and a query's run of them becomes a phrase of characters, so that a word is
# found inside a sentence (unicode61, like most tokenizers, would take the whole run of
# characters between two spaces as one token).
_CJK = (
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf"  # CJK Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
)
CJK_CHAR = re.compile(f"([{_CJK}])")


def index_form(text: str) -> str:
    """``text`` as the index takes it: each CJK character a word of its own."""
    if text.isascii():
        return text
    return CJK_CHAR.sub(r" \1 ", text)


def span_text(span: SpanRecord) -> str:
    """The searchable text of ``span``, lines in a stable order."""
    parts: list[str] = [span.name]
    if span.status_message:
        parts.append(span.status_message)
    for event in span.events:
        if event.get("name") == "exception":
            attributes = event.get("attributes") or {}
            for key in ("exception.type", "exception.message"):
                value = attributes.get(key)
                if isinstance(value, str):
                    parts.append(value)
    if span.input:
        _payload_words(span.input, True, parts)
    if span.output:
        _payload_words(span.output, False, parts)
    text = "\n".join(part for part in parts if part)
    return text[:MAX_INDEXED_CHARS]


def _payload_words(text: str, new_only: bool, out: list[str]) -> None:
    if text[:1] not in ("[", "{", '"'):
        out.append(text)
        return
    try:
        value = jsontext.loads(text)
    except (ValueError, RecursionError):
        out.append(text)
        return
    if new_only:
        chat = _chat(value)
        if chat is not None:
            value = _new_messages(chat)
    _strings(value, 0, out)


def _chat(value: Any) -> list[dict[str, Any]] | None:
    """Chat messages as ingest stores them (a list of messages with roles), or the
    arguments of a function that took them (``{"messages": [...]}``)."""
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, list) and value:
        for message in value:
            if type(message) is not dict or "role" not in message:
                return None
        return value
    return None


def _new_messages(chat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``conversation.new_input_indexes``'s messages, found from the end: those after the
    last reply but the system prompt; else the last user message."""
    first = len(chat)
    while first and chat[first - 1]["role"] not in ("assistant", "model"):
        first -= 1
    fresh = [m for m in chat[first:] if m["role"] != "system"]
    if fresh:
        return fresh
    users = [m for m in chat if m["role"] == "user"]
    return users[-1:]


# Keys whose values name things rather than say them.
_NOT_TEXT = frozenset(("role", "type", "id", "tool_call_id", "finish_reason"))


def _strings(value: Any, depth: int, out: list[str]) -> None:
    """The string values in ``value`` (not its keys: they name fields, no one's words)."""
    kind = type(value)
    if kind is str:
        out.append(value)
    elif depth >= _MAX_DEPTH:
        return
    elif kind is dict:
        for key, item in value.items():
            if type(item) is str:
                if key not in _NOT_TEXT:
                    out.append(item)
            elif item is not None and key not in _NOT_TEXT:
                _strings(item, depth + 1, out)
    elif kind is list:
        for item in value:
            if type(item) is str:
                out.append(item)
            elif item is not None:
                _strings(item, depth + 1, out)
