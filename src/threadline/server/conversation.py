"""A trace as one turn of a conversation: the chat messages said and replied.

Shared by the web UI's session transcript and the evaluators' judge prompts, so a
judge reads a session exactly as a person does on its page. A turn's messages come
from its LLM spans when they carry chat messages (the new user message(s) of the first
call, the reply of the last call), otherwise from the root span's input and output.
Chat histories repeat earlier turns, so only what follows the last assistant message
of the first call counts as this turn's input. The messages are read in the one shape
ingest gives every convention's chat messages (``chat_messages``), so this module
knows no convention.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from threadline.server import chat_messages
from threadline.server.model import Span, TraceDetail


@dataclass(frozen=True)
class Message:
    role: str
    text: str  # what to show: the text content, or pretty JSON of anything else


def messages(value: Any) -> list[Message] | None:
    """A payload's chat messages, None if it has none.

    Ingest has already put the messages of every convention into one shape
    (``chat_messages``); this reads that shape. An object holding a ``messages``
    list (function arguments, a request body) shows those messages.
    """
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    found = chat_messages.from_value(value)
    if not found:
        return None
    return [Message(role=m["role"], text=chat_messages.message_text(m)) for m in found]


def pretty(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def root_span(spans: list[Span]) -> Span | None:
    ids = {s.span_id for s in spans}
    for span in spans:
        if span.parent_span_id is None or span.parent_span_id not in ids:
            return span
    return spans[0] if spans else None


def new_input_indexes(roles: Sequence[str]) -> list[int]:
    """Which messages of a chat sent to a model are the turn's new input, by their roles:
    those after the last reply but the system prompt; else the last user message. None
    of a chat that is instructions only: instructions are not what anyone said."""
    last_reply = max(
        (i for i, role in enumerate(roles) if role in ("assistant", "model")), default=-1
    )
    fresh = [i for i in range(last_reply + 1, len(roles)) if roles[i] != "system"]
    return fresh or [i for i, role in enumerate(roles) if role == "user"][-1:]


# An argument no JSON could hold, recorded as Python's default repr (an API client passed
# to the turn's function: ``<openai.OpenAI object at 0x7f89fd46f590>``): never what the
# user said.
OBJECT_REPR = re.compile(r"<[\w.<>]+ object at 0x[0-9a-fA-F]+>\Z")


def sole_text(arguments: Any, ids: Collection[str]) -> str | None:
    """The user's message among a function's recorded arguments (by name, as Python
    SDKs record them, or in order, as Laminar's TypeScript ``observe`` does): their one
    text that is not an id the trace already shows (its session or user) nor an
    object's repr, if any."""
    if isinstance(arguments, dict):
        values: Any = arguments.values()
    elif isinstance(arguments, list):
        values = arguments
    else:
        return None
    texts = [
        v
        for v in values
        if isinstance(v, str) and v.strip() and v not in ids and not OBJECT_REPR.match(v)
    ]
    return texts[0] if len(texts) == 1 else None


def _new_input(history: list[Message]) -> list[Message]:
    return [history[i] for i in new_input_indexes([m.role for m in history])]


def _said(value: Any, ids: Collection[str]) -> list[Message]:
    """What a span's input payload says the user said."""
    if value is None or value == "":
        return []
    found = messages(value)
    if found:
        return _new_input(found)
    # {"conversation_id": "c1", "user_message": "hi"} reads as "hi" in a chat bubble.
    text = sole_text(value, ids)
    if text is not None:
        return [Message(role="user", text=text)]
    return [Message(role="user", text=pretty(value))]


def _replied(value: Any) -> list[Message]:
    if value is None or value == "":
        return []
    found = messages(value)
    if found:
        return found
    # {"reply": "hi"} reads better as "hi" in a chat bubble.
    if isinstance(value, dict) and len(value) == 1:
        (only,) = value.values()
        if isinstance(only, str):
            return [Message(role="assistant", text=only)]
    return [Message(role="assistant", text=pretty(value))]


def turn_messages(trace: TraceDetail) -> tuple[list[Message], list[Message]]:
    """(what the user said, what the app replied) in one trace."""
    ids = {i for i in (trace.session_id, trace.user_id) if i}
    chat = [s for s in trace.spans if messages(s.input)]
    root = root_span(trace.spans)
    # The first chat that says something: a span carrying only instructions does not.
    said: list[Message] = next(
        (new for s in chat if (new := _new_input(messages(s.input) or []))), []
    )
    replied: list[Message] = []
    for span in reversed(chat):
        replied = messages(span.output) or []
        if replied:
            break
    if not said and root is not None:
        said = _said(root.input, ids)
    if not replied and root is not None:
        replied = _replied(root.output)
    return said, replied


def trace_errors(trace: TraceDetail) -> list[str]:
    """One line per failed span: its name and what went wrong."""
    found = []
    for span in trace.spans:
        if span.status != "error":
            continue
        detail = span.status_message or next(
            (
                str(e.attributes.get("exception.message", ""))
                for e in span.events
                if e.name == "exception"
            ),
            "",
        )
        found.append(f"{span.name}: {detail}" if detail else span.name)
    return found
