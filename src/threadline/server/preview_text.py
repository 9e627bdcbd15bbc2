"""A stored preview as a person reads it: the text said, not its JSON.

Lists keep a trace's input and output previews, and a session's first input and last
output, as they were stored: JSON text when the payload was JSON (``previews``), at
most ``PREVIEW_CHARS`` characters. A person wants what was said. The web UI's lists
show it, and the API's and the exports' ``*_text`` fields give it (``model``): one
function for both, so that a preview reads alike everywhere.

What was said: of a chat, its last user message (else its last message); of an object
with one member, that member (``{"reply": "hi"}`` reads ``hi``); of a JSON string, the
string; of other JSON, compact JSON; of text that is not JSON, the text.

A preview cut at ``PREVIEW_CHARS`` is JSON that no parser takes. It is closed where it
was cut (an open string ended, open arrays and objects closed, a key, number or comma
left dangling dropped), read as above, and ``…`` ends its text. A lone surrogate (JSON
can escape one) becomes U+FFFD: it cannot be sent as UTF-8.
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from threadline.server import jsontext
from threadline.server.chat_messages import from_value, message_text

# How much of an input or output a trace or session list keeps.
PREVIEW_CHARS = 2000
CUT = "…"

# Where a string starts, or a structural character: whatever lies between (numbers,
# literals) is skipped, and each string is skipped whole by ``scanstring``.
_STRUCTURE = re.compile(r'[\[\]{},:"]')
_PARTIAL_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{0,3})?\Z")
_SURROGATES = re.compile("[\ud800-\udfff]")
_NOT_JSON = object()  # what a text that does not parse gives (JSON's null gives None)


def readable(raw: str | None) -> str | None:
    """The text said in ``raw``, a stored preview (see the module); None for none."""
    if raw is None:
        return None
    value, cut = _NOT_JSON, False
    if raw[:1] in ('"', "[", "{"):
        # A cut preview seldom ends as JSON does: it is closed at once, not parsed whole
        # first (a failed parse of 2,000 characters cost as much as the closing).
        if len(raw) < PREVIEW_CHARS or raw[-1] in ('"', "]", "}"):
            value = _loads(raw)
        if value is _NOT_JSON and len(raw) >= PREVIEW_CHARS:
            value = _closed(raw)
            cut = value is not _NOT_JSON
    text = raw if value is _NOT_JSON else _said(value)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            text = _SURROGATES.sub("\ufffd", text)
    return text + CUT if cut else text


def _said(value: Any) -> str:
    found = from_value(value["messages"] if _holds_messages(value) else value)
    if found:
        users = [m for m in found if m["role"] == "user"] or found
        return message_text(users[-1])
    if isinstance(value, dict) and len(value) == 1:
        (value,) = value.values()
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _holds_messages(value: Any) -> bool:
    # Arguments holding a chat (``{"conversation_id": ..., "messages": [...]}``) read as
    # that chat, as the transcript reads them.
    return isinstance(value, dict) and isinstance(value.get("messages"), list)


def _closed(text: str) -> Any:
    """The value of ``text``, JSON cut short, closed where it was cut; ``_NOT_JSON`` when
    it does not read as JSON up to there."""
    closers: list[str] = []  # of the arrays and objects open, innermost last
    key_next = False  # inside an object, where a key comes next
    # The longest prefix that closes into JSON: its end, and the closers then open.
    whole, whole_closers = 0, ""
    found = _STRUCTURE.search(text)
    while found is not None:
        at, first = found.start(), found.group()
        end = at + 1
        if first == '"':
            try:
                end = scanstring(text, end)[1]  # in C: a string's end, past its escapes
            except ValueError:
                if key_next:
                    break  # the cut fell in a key: what came before it is whole
                # The cut fell in a string value: it ends where it was cut.
                said = _without_partial_escape(text[at:])
                return _loads(text[:at] + said + '"' + "".join(reversed(closers)))
            if not key_next:  # a value whole, not a key
                whole, whole_closers = end, "".join(reversed(closers))
        elif first in "[{":
            closers.append("]" if first == "[" else "}")
            key_next = first == "{"
            whole, whole_closers = end, "".join(reversed(closers))
        elif first in "]}":
            if not closers:
                return _NOT_JSON
            closers.pop()
            key_next = False
            whole, whole_closers = end, "".join(reversed(closers))
        elif first == ",":
            whole, whole_closers = at, "".join(reversed(closers))
            key_next = bool(closers) and closers[-1] == "}"
        else:  # ":"
            key_next = False
        found = _STRUCTURE.search(text, end)
    return _loads(text[:whole] + whole_closers) if whole else _NOT_JSON


def _loads(text: str) -> Any:
    try:
        return jsontext.loads(text)  # orjson: twice as fast as json on 2,000 characters
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's stack
        return _NOT_JSON


def _without_partial_escape(string: str) -> str:
    """``string``, the start of a JSON string, without an escape cut short at its end
    (a lone ``\\``, or a ``\\uXXXX`` missing digits), whose backslash is not itself
    escaped."""
    # Only its last six characters searched: a search anchored at the end still tries
    # every place it could start.
    tail = len(string) - 6
    partial = _PARTIAL_ESCAPE.search(string, max(tail, 0))
    if partial is None:
        return string
    before = string[: partial.start()]
    escaped = (len(before) - len(before.rstrip("\\"))) % 2 == 1
    return string if escaped else before
