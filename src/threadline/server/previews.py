"""What stands for a trace's input in lists: the turn's new user message.

A trace's input preview (and a session's ``first_input``) is read in lists, searched,
and shown one line long. The input it is made from is often much more than the turn:
an LLM call's whole chat history, whose newest message comes last and would be cut
off, or a function's arguments, where the message sits beside ids. So the preview is
what ``conversation`` takes as what the user said: of a chat, its new messages (never
its instructions alone); of arguments, their one text that is not the trace's session
or user id. Anything else is the input's first ``PREVIEW_CHARS`` characters, as sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

from threadline.server import chat_messages, jsontext
from threadline.server.conversation import new_input_indexes, sole_text
from threadline.server.model import PREVIEW_CHARS


def input_preview(text: str | None, ids: Collection[str] = ()) -> str | None:
    """The preview of ``text``, a span's whole input; ``ids``: the trace's session and
    user ids. JSON text when it is read from JSON, so lists can show it as it was sent."""
    if not text:
        return text
    if text[:1] not in ("[", "{"):
        return text[:PREVIEW_CHARS]  # a JSON string or number, or plain text: as sent
    try:
        value = jsontext.loads(text)
    except (ValueError, RecursionError):
        return text[:PREVIEW_CHARS]
    chat = _chat(value)
    if chat:
        said = [chat[i] for i in new_input_indexes([m["role"] for m in chat])]
        return _bounded_chat(said) if said else None
    message = sole_text(value, ids)
    if message is not None:
        return _bounded_text(message)
    return text[:PREVIEW_CHARS]


def _chat(value: Any) -> list[dict[str, Any]] | None:
    # Arguments holding a chat (``{"conversation_id": ..., "messages": [...]}``) are
    # read as that chat, as the transcript reads them.
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    return chat_messages.from_value(value)


def _bounded_chat(said: list[dict[str, Any]]) -> str:
    text = _dumps(said)
    if len(text) <= PREVIEW_CHARS:
        return text
    # Too long: the newest message alone, its text cut to fit.
    last = said[-1]
    return _fitted(lambda cut: [{"role": last["role"], "content": last["content"][:cut]}])


def _bounded_text(message: str) -> str:
    return _fitted(lambda cut: message[:cut])


def _fitted(value: Callable[[int], Any]) -> str:
    # Most text fits once cut a little below the bound; escapes (at most twelve
    # characters for one) can make the JSON longer, and then it is cut to fit anyway.
    text = _dumps(value(PREVIEW_CHARS - 100))
    return text if len(text) <= PREVIEW_CHARS else _dumps(value(PREVIEW_CHARS // 16))


def _dumps(value: Any) -> str:
    """JSON text with non-ASCII characters as they are (text search reads them), unless
    it holds a lone surrogate, which only an escape can carry into storage."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)
    return text
