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
from collections.abc import Iterator
from typing import Any

from threadline.server import jsontext
from threadline.server.conversation import new_input_indexes
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
        parts.extend(_payload_words(span.input, new_only=True))
    if span.output:
        parts.extend(_payload_words(span.output, new_only=False))
    text = "\n".join(part for part in parts if part)
    return text[:MAX_INDEXED_CHARS]


def _payload_words(text: str, new_only: bool) -> Iterator[str]:
    if text[:1] not in ("[", "{", '"'):
        yield text
        return
    try:
        value = jsontext.loads(text)
    except (ValueError, RecursionError):
        yield text
        return
    chat = _chat(value)
    if chat is not None and new_only:
        value = [chat[i] for i in new_input_indexes([str(m.get("role")) for m in chat])]
    yield from _strings(value, 0)


def _chat(value: Any) -> list[dict[str, Any]] | None:
    """Chat messages as ingest stores them (a list of messages with roles), or the
    arguments of a function that took them (``{"messages": [...]}``)."""
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if (
        isinstance(value, list)
        and value
        and all(isinstance(m, dict) and "role" in m for m in value)
    ):
        return value
    return None


def _strings(value: Any, depth: int) -> Iterator[str]:
    """The string values in ``value`` (not its keys: they name fields, no one's words);
    a role is not text either."""
    if isinstance(value, str):
        yield value
    elif depth >= _MAX_DEPTH:
        return
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in ("role", "type", "id", "tool_call_id", "finish_reason"):
                yield from _strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, depth + 1)
