"""What a span says, without meaning to, about the conversation it belongs to.

An application that sends no session id still tells which turns go together: it resends
the conversation so far as each turn's chat input, OpenAI's Responses API chains turns
with ``previous_response_id``, and agent frameworks carry a thread id. Each of these
becomes a pair of opaque keys (16-byte digests): the keys a span's trace *offers* (by
which a later turn can find it) and the keys it *asks* for (naming an earlier turn of
the same conversation). A store links a trace to those that offer what it asks, and to
those that ask what it offers, so turns arriving in any order meet
(``store/sqlite/inference.py``).

- **Thread id** (a framework's own attribute or the ``thread_id`` metadata LangGraph
  and LangChain send): offered and asked alike.
- **Responses chain**: a response id offers itself; ``previous_response_id`` asks.
- **History prefix**: an LLM call offers the digest of its whole conversation so far
  (input messages then reply); it asks for the digest of its input without the trailing
  user messages, which is the previous turn's conversation so far. It asks only when
  that prefix holds an assistant message: a first turn's prefix is at most the system
  prompt, which unrelated conversations share. The user id, when the span carries
  one, is part of each digest, so two users' identical exchanges stay apart.

Each span also says what names its conversation without finding another turn, for a
store that cannot read back what other servers just wrote (ClickHouse,
``store/clickhouse/inference.py``): the thread id, the Responses chain's ids, and the
**opening**, the digest of the conversation up to its first reply (the system prompt,
the first user message, the first assistant message), which every later turn resends.
It is the first turn's offered key, and the key its second turn asks for.

Pure functions over a ``SpanRecord``: they run with normalisation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from threadline.server.jsontext import loads
from threadline.server.model import SessionSignals, Signal, SpanRecord

# Attributes that carry a framework's thread id, and metadata keys that do (LangGraph's
# ``configurable.thread_id`` reaches metadata through LangChain's callbacks).
THREAD_ID_ATTRIBUTES = ("langgraph.thread_id", "thread.id")
THREAD_ID_METADATA = ("thread_id",)
# The id of the response a span received (GenAI conventions; OpenInference keeps the
# whole response body in ``output.value``).
RESPONSE_ID_ATTRIBUTES = ("gen_ai.response.id",)
# The response a request continues: an attribute, else a field of the request
# parameters OpenInference records as JSON.
PREVIOUS_RESPONSE_ID_ATTRIBUTES = (
    "gen_ai.request.previous_response_id",
    "gen_ai.openai.request.previous_response_id",
)
REQUEST_JSON_ATTRIBUTES = ("llm.invocation_parameters", "input.value")
RESPONSE_JSON_ATTRIBUTES = ("output.value",)
# Only Responses API ids are chained: a chat completion's id is never asked for, and
# offering it would only cost a row.
RESPONSES_ID_PREFIX = "resp_"
# A JSON attribute is parsed for an id only below this size (request bodies resend the
# conversation; the id is a field of the top-level object).
_MAX_JSON_CHARS = 1_000_000


def span_signals(record: SpanRecord) -> SessionSignals | None:
    """The keys of a span that carries no session id of its own; None when it has none."""
    if record.session_id is not None:
        return None
    offers: list[bytes] = []
    asks: list[tuple[bytes, Signal]] = []
    attrs = record.attributes
    thread_id = _thread_id(attrs, record.metadata)
    thread = _key("thread", thread_id) if thread_id else None
    if thread:
        offers.append(thread)
        asks.append((thread, "thread_id"))
    response_id, previous_id = _response_ids(attrs)
    response = _key("response", response_id) if response_id else None
    previous = _key("response", previous_id) if previous_id else None
    if response:
        offers.append(response)
    if previous:
        asks.append((previous, "previous_response_id"))
    opening: bytes | None = None
    resent = False
    if record.input is not None and record.span_type == "LLM":
        messages = _message_list(record.input)
        if messages:
            reply = _message_list(record.output) if record.output else None
            offered, asked, opening, resent = _history_digests(messages, reply, record.user_id)
            if offered:
                offers.append(offered)
            if asked:
                asks.append((asked, "history"))
    if not offers and not asks:
        return None
    return SessionSignals(
        tuple(offers),
        tuple(asks),
        thread=thread,
        opening=opening,
        opening_resent=resent,
        response=response,
        previous_response=previous,
    )


def message_digests(
    messages: list[Any], reply: list[Any] | None, user_id: str | None
) -> tuple[bytes | None, bytes | None]:
    """(the digest of ``messages`` then ``reply``, the digest of ``messages`` without its
    trailing user messages when that prefix holds an assistant message)."""
    offered, asked, _, _ = _history_digests(messages, reply, user_id)
    return offered, asked


def _history_digests(
    messages: list[Any], reply: list[Any] | None, user_id: str | None
) -> tuple[bytes | None, bytes | None, bytes | None, bool]:
    """``message_digests``, then the opening (the digest up to and including the first
    assistant message, in ``messages`` or else in ``reply``; the first turn's offered
    key) and whether ``messages`` held it: one pass over the messages."""
    cut = len(messages)
    while cut and _role(messages[cut - 1]) == "user":
        cut -= 1
    digest = hashlib.blake2b(digest_size=16, person=b"history")
    digest.update((user_id or "").encode("utf-8", "surrogatepass") + b"\x00")
    asked: bytes | None = None
    opening: bytes | None = None
    for index, message in enumerate(messages):
        if index == cut and opening is not None:
            asked = digest.copy().digest()
        digest.update(_message_bytes(message))
        if opening is None and _role(message) == "assistant":
            opening = digest.copy().digest()
    resent = opening is not None
    if cut == len(messages) and resent:
        # No trailing user message (a tool result, a continuation): the prefix is all.
        asked = digest.copy().digest()
    if not reply:
        return None, asked, opening, resent
    for message in reply:
        digest.update(_message_bytes(message))
        if opening is None and _role(message) == "assistant":
            opening = digest.copy().digest()
    return digest.digest(), asked, opening, resent


def _message_list(text: str) -> list[Any] | None:
    # Stored chat payloads are JSON lists of messages in one shape (``messages``).
    if text[:1] != "[" or '"role"' not in text:
        return None
    try:
        value = loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, list) and value else None


def _role(message: Any) -> str | None:
    return message.get("role") if isinstance(message, dict) else None


def _message_bytes(message: Any) -> bytes:
    """What identifies a message when a later turn resends it: who said it, its text and
    its tool calls; not the fields a provider adds to its output only (finish reason)."""
    if not isinstance(message, dict):
        return repr(message).encode("utf-8", "surrogatepass") + b"\x1e"
    parts = [str(message.get("role", "")), str(message.get("content", ""))]
    for call in message.get("tool_calls") or ():
        if isinstance(call, dict):
            parts += [
                str(call.get("id") or ""),
                str(call.get("name", "")),
                str(call.get("arguments", "")),
            ]
    if message.get("tool_call_id"):
        parts.append(str(message["tool_call_id"]))
    return "\x1f".join(parts).encode("utf-8", "surrogatepass") + b"\x1e"


def _key(kind: str, value: str) -> bytes:
    return hashlib.blake2b(
        value.encode("utf-8", "surrogatepass"), digest_size=16, person=kind.encode()
    ).digest()


def _thread_id(attrs: Mapping[str, Any], metadata: Mapping[str, Any]) -> str | None:
    for key in THREAD_ID_ATTRIBUTES:
        value = attrs.get(key)
        if isinstance(value, str | int) and value != "":
            return str(value)
    for key in THREAD_ID_METADATA:
        value = metadata.get(key)
        if isinstance(value, str | int) and value != "":
            return str(value)
    return None


def _response_ids(attrs: Mapping[str, Any]) -> tuple[str | None, str | None]:
    response_id = next(
        (v for k in RESPONSE_ID_ATTRIBUTES if isinstance(v := attrs.get(k), str)), None
    ) or _json_field(attrs, RESPONSE_JSON_ATTRIBUTES, "id", RESPONSES_ID_PREFIX)
    previous_id = next(
        (v for k in PREVIOUS_RESPONSE_ID_ATTRIBUTES if isinstance(v := attrs.get(k), str)), None
    ) or _json_field(attrs, REQUEST_JSON_ATTRIBUTES, "previous_response_id", "")
    if response_id and not response_id.startswith(RESPONSES_ID_PREFIX):
        response_id = None
    return response_id, previous_id or None


def _json_field(
    attrs: Mapping[str, Any], keys: tuple[str, ...], field: str, value_prefix: str
) -> str | None:
    """``field`` of the first JSON object among ``keys`` that names it (a text is only
    parsed when the field's name, and the value's prefix, occur in it: most do not)."""
    needle = f'"{field}"'
    for key in keys:
        text = attrs.get(key)
        if not isinstance(text, str) or text[:1] != "{" or len(text) > _MAX_JSON_CHARS:
            continue
        if needle not in text or f'"{value_prefix}' not in text:
            continue
        try:
            value = loads(text)
        except (ValueError, RecursionError):
            continue
        found = value.get(field) if isinstance(value, dict) else None
        if isinstance(found, str) and found.startswith(value_prefix) and found:
            return found
    return None
