"""What of a span is searchable, as one text: its name, its error, the words of its input
and output (JSON strings, not keys or punctuation) and of its exception events.

Of a chat sent to a model only the turn's new messages are taken (``conversation``'s
rule: those after the last reply, never the system prompt: instructions, resent with every
call, are not what anyone said): every
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
# A surrogate code point in a str is a lone one (JSON's "\ud800" escape decodes to it):
# it has no UTF-8 form, so neither SQLite nor ClickHouse could be given the text.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_TO_FORM = re.compile(f"[{_CJK}\ud800-\udfff]")


def index_form(text: str) -> str:
    """``text`` as the index takes it: each CJK character a word of its own, and a lone
    surrogate a space (no word holds one)."""
    # Most non-ASCII text holds neither (accents, dashes, box drawing): one reading
    # tells so, where the two substitutions read it twice.
    if text.isascii() or _TO_FORM.search(text) is None:
        return text
    return CJK_CHAR.sub(r" \1 ", _LONE_SURROGATE.sub(" ", text))


# Between two spans' text in one document: a word no text holds, so that no phrase is
# found across the boundary of two spans.
SPAN_BREAK = "threadlinespanbreak"


def span_text(span: SpanRecord) -> str:
    """The searchable text of ``span``, lines in a stable order."""
    return "\n".join(span_parts(span))[:MAX_INDEXED_CHARS]


def document_text(spans: list[list[str]]) -> str:
    """One document of the index for several spans of a trace (each given by its
    ``span_parts``, in a stable order), as the index takes it: a text said again by a
    later span (a root span's input and output echo its model call's; every call of an
    agent resends the same instructions) is indexed once, and so is a text that a longer
    one of another span of the trace holds whole (a tool's result quoted in the prompt
    of a call): the
    index finds a trace by its words, and which of its spans hold them the snippets find
    in each span's own text. A function of its spans alone, so that deletion can give
    the index the same text back."""
    # The texts seen: short ones in a set; long ones by their length, compared only
    # with those of the same length (hashing each whole text, kilobytes, cost more than
    # the few comparisons: benchmarks.md).
    seen: set[str] = set()
    by_length: dict[int, list[str]] = {}
    size = 0  # of the distinct texts, a line each
    by_span: list[list[str]] = []
    long: list[tuple[str, int]] = []  # (text, its span's number), in span order
    for parts in spans:
        fresh = []
        for part in parts:
            length = len(part)
            if length < QUOTED_MIN_CHARS:
                if part in seen:
                    continue
                seen.add(part)
            else:
                same_length = by_length.get(length)
                if same_length is None:
                    by_length[length] = [part]
                elif part in same_length:
                    continue
                else:
                    same_length.append(part)
                long.append((part, len(by_span)))
            fresh.append(part)
            size += length + 1
        if fresh:
            by_span.append(fresh)
    # Only a long text of one span can be held by another's. Past the bound a span's
    # text is cut (a text it holds may not be indexed whole): such a rare, huge
    # document is indexed as it comes.
    if size > MAX_INDEXED_CHARS:
        chunks = ["\n".join(fresh)[:MAX_INDEXED_CHARS] for fresh in by_span]
        return index_form(f"\n{SPAN_BREAK}\n".join(chunks))
    if long and long[0][1] != long[-1][1]:
        quoted = _quoted(long, size * _QUOTED_READ_BOUND)
        if quoted:
            by_span = [[part for part in fresh if id(part) not in quoted] for fresh in by_span]
    # No span's text is past the bound: the lines of every span, and a break between
    # two spans, joined once.
    lines: list[str] = []
    for fresh in by_span:
        if fresh:
            if lines:
                lines.append(SPAN_BREAK)
            lines += fresh
    return index_form("\n".join(lines))


# A text is looked for inside the longer texts of the document's other spans only from
# this length on (a shorter one is a few words, cheaper to index than to look for), and
# the looking stops once it has read this many times the document's length (a trace of
# many long texts would cost the square of its length).
QUOTED_MIN_CHARS = 64
_QUOTED_READ_BOUND = 4


def _quoted(texts: list[tuple[str, int]], budget: int) -> set[int]:
    """The ids of those of ``texts`` (distinct, each with its span's number) that a
    longer one of another span holds whole, looked for longest first until ``budget``
    characters are read; a text held is itself no container, so each one left out is
    inside one kept. (Ids, not the texts: a set of texts would hash each whole.)"""
    quoted: set[int] = set()
    kept: list[tuple[str, int]] = []
    for text, span in sorted(texts, key=lambda item: len(item[0]), reverse=True):
        held = False
        for container, of in kept:
            if len(container) == len(text):
                break  # no longer than it: nor are those after it
            if of != span:
                budget -= len(container)
                if _holds(container, text):
                    held = True
                    break
        if held:
            quoted.add(id(text))
        else:
            kept.append((text, span))
        if budget < 0:
            break
    return quoted


def _holds(container: str, text: str) -> bool:
    """``text in container``, found by looking for its first characters and comparing
    the rest where they are: a long needle's skip table holds most letters, so ``in``
    steps a character at a time (a quarter fewer instructions on real chats' tool
    results; benchmarks.md)."""
    head = text[:16]
    at = container.find(head)
    while at >= 0:
        if container.startswith(text, at):
            return True
        at = container.find(head, at + 1)
    return False


def span_parts(span: SpanRecord) -> list[str]:
    """The texts of ``span`` that are searchable, in a stable order."""
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
        if span.input_messages is not None and span.input[:1] == "[":
            # The messages parsing the text gives (ingest's): their new ones, as
            # ``_payload_words`` finds them in the text.
            _strings(_new_messages(span.input_messages), 0, parts)
        else:
            _payload_words(span.input, True, parts)
    if span.output:
        if span.output_messages is not None and span.output[:1] == "[":
            _strings(span.output_messages, 0, parts)  # what parsing the text gives
        else:
            _payload_words(span.output, False, parts)
    return [part for part in parts if part and not part.isspace()]


def _payload_words(text: str, new_only: bool, out: list[str]) -> None:
    if text[:1] not in ("[", "{", '"'):
        out.append(text)
        return
    if new_only and text[:1] == "[":
        tail = _chat_tail(text)
        if tail is not None:
            _strings(tail, 0, out)
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


# Where a reply begins in a chat's JSON text: a quote inside a string is escaped, so
# this is found only where a message object begins.
_REPLY_STARTS = (
    '{"role":"assistant"',
    '{"role": "assistant"',
    '{"role":"model"',
    '{"role": "model"',
)
_MESSAGE_START = '{"role":'  # what each of them begins with


def _last_reply(text: str) -> int:
    """Where the last of ``_REPLY_STARTS`` begins in ``text``, -1 if none: found by
    stepping back over the messages from the end (a reply is near the end of a chat;
    looking for each marker in turn read the whole of a long conversation for each
    marker it does not hold)."""
    end = len(text)
    while True:
        at = text.rfind(_MESSAGE_START, 0, end)
        if at < 0 or text.startswith(_REPLY_STARTS, at):
            return at
        end = at


def _chat_tail(text: str) -> list[dict[str, Any]] | None:
    """The new messages of a chat's JSON text (``_new_messages``'), parsed from a reply
    on rather than whole (an LLM call's input is the whole conversation so far: parsing
    it all, call after call, is most of the cost of indexing a long conversation). The
    reply is the last one the text's markers find: the last reply of the chat is that
    one or one after it (written so that no marker sees it), so the messages after the
    last reply are in the tail parsed. None when the text has no such reply, is not
    such a chat, or holds no message after its last reply: the caller parses it whole."""
    start = _last_reply(text)
    if start <= 0 or text[start - 1] not in ",[ \n":
        return None
    try:
        value = jsontext.loads("[" + text[start:])
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list) or not value:
        return None
    chat = _chat(value)
    if chat is None:
        return None
    return _after_last_reply(chat) or None


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
    fresh = _after_last_reply(chat)
    if fresh:
        return fresh
    users = [m for m in chat if m["role"] == "user"]
    return users[-1:]


def _after_last_reply(chat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages after the chat's last reply (all of them if none), but the system
    prompt."""
    first = len(chat)
    while first and chat[first - 1]["role"] not in ("assistant", "model"):
        first -= 1
    return [m for m in chat[first:] if m["role"] != "system"]


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
