"""A span's searchable text is the same whether it is read from the stored text or from
the messages ingest parsed it into (``SpanRecord.input_messages``, kept while the record
is in the process that normalised it): the index is given the one, deletion and the
snippets read the other."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from tests.otlp import new_span_id, new_trace_id, request, span
from threadline.server.ingest.normalize import normalize_request
from threadline.server.model import SpanRecord
from threadline.server.search.text import span_parts


def _record(attributes: dict[str, Any]) -> SpanRecord:
    (record,) = normalize_request(
        request([span(new_trace_id(), new_span_id(), name="chat", attributes=attributes)])
    ).spans
    return record


def _from_text(record: SpanRecord) -> list[str]:
    return span_parts(dataclasses.replace(record, input_messages=None, output_messages=None))


SYSTEM = {"role": "system", "content": "Answer about quince orchards."}
ASK = {"role": "user", "content": "Where do quinces grow?"}
REPLY = {"role": "assistant", "content": "In Aragon, mostly."}
AGAIN = {"role": "user", "content": "And medlars?"}
TOOL = {"role": "tool", "content": "medlar: Mespilus germanica"}

CHATS: dict[str, list[dict[str, Any]]] = {
    "first call": [SYSTEM, ASK],
    "a later turn": [SYSTEM, ASK, REPLY, AGAIN],
    "ending with a reply": [SYSTEM, ASK, REPLY],
    "a tool's result after a call": [ASK, {**REPLY, "content": "calling"}, TOOL],
    "two replies in a row": [ASK, REPLY, {**REPLY, "content": "More on medlars."}],
    "a system prompt after the reply": [ASK, REPLY, SYSTEM, AGAIN],
    "a role that begins as a reply's": [ASK, {"role": "assistant_draft", "content": "x"}, AGAIN],
    "gemini's model role": [ASK, {"role": "model", "content": "Aragon."}, AGAIN],
    "only a system prompt": [SYSTEM],
    # A string that is the word "role", or that quotes a message's JSON.
    "a message that says role": [ASK, REPLY, {**AGAIN, "content": "role"}],
    "a message that quotes a reply": [
        ASK,
        REPLY,
        {**AGAIN, "content": 'It said {"role": "assistant", "content": "x"} then.'},
    ],
    "words outside ASCII": [ASK, {**REPLY, "content": "En Aragón."}, {**AGAIN, "content": "¿Y?"}],
    # Written "mixed", the markers see the first reply and miss the second.
    "replies at both parities": [
        ASK,
        ASK,
        REPLY,
        AGAIN,
        {**ASK, "content": "And sloes?"},
        {**REPLY, "content": "Sloes grow wild."},
        {**AGAIN, "content": "Where?"},
    ],
}


def _last_replaced(text: str, old: str, new: str) -> str:
    at = text.rfind(old)
    return text if at < 0 else text[:at] + new + text[at + len(old) :]


# The JSON of a chat as sources write it: compact, as json.dumps does, pretty-printed,
# and with a space inside the brace (which the text's reply markers do not see).
WRITERS = {
    "compact": lambda chat: json.dumps(chat, separators=(",", ":")),
    "dumps": json.dumps,
    "indented": lambda chat: json.dumps(chat, indent=2),
    "spaced": lambda chat: json.dumps(chat).replace('{"role"', '{ "role"'),
    "escaped": lambda chat: json.dumps(chat).replace('"assistant"', '"assist\\u0061nt"'),
    "tabbed": lambda chat: json.dumps(chat).replace(", {", ",\t{"),
    # The last reply written so that the markers step over it (two spaces after the
    # colon), or every other message's key escaped (no marker, no "role" to count).
    "a reply the markers miss": lambda chat: _last_replaced(
        json.dumps(chat), '{"role": "assistant"', '{"role":  "assistant"'
    ),
    "escaped keys": lambda chat: (
        "["
        + ", ".join(
            json.dumps(m).replace('"role"', '"r\\u006fle"') if i % 2 else json.dumps(m)
            for i, m in enumerate(chat)
        )
        + "]"
    ),
    "mixed": lambda chat: (
        "["
        + ", ".join(
            json.dumps(m).replace('{"role"', '{ "role"') if i % 2 else json.dumps(m)
            for i, m in enumerate(chat)
        )
        + "]"
    ),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("chat", sorted(CHATS))
def test_a_chat_in_the_one_shape_gives_the_text_its_stored_json_gives(chat: str, writer: str):
    text = WRITERS[writer](CHATS[chat])
    record = _record({"gen_ai.input.messages": text, "gen_ai.output.messages": text})
    assert record.input == text  # kept as sent
    assert record.input_messages is not None and record.output_messages is not None
    assert span_parts(record) == _from_text(record)


@pytest.mark.parametrize("chat", sorted(CHATS))
def test_a_chat_ingest_rewrote_gives_the_text_its_stored_json_gives(chat: str):
    """GenAI's parts and system instructions: the stored text is ingest's JSON."""
    as_parts = [
        {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]}
        for m in CHATS[chat]
        if m["role"] != "system"
    ] or [{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]
    record = _record(
        {
            "gen_ai.input.messages": json.dumps(as_parts),
            "gen_ai.output.messages": json.dumps(as_parts[-1:]),
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
        }
    )
    assert record.input_messages is not None and record.output_messages is not None
    assert record.input != json.dumps(as_parts)  # rewritten in the one shape
    assert span_parts(record) == _from_text(record)


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_chat_gives_the_messages_after_its_last_reply_however_it_is_written(writer: str):
    """The reply the text's markers find may not be the last (written another way):
    the messages after the last reply are the new ones, whichever way it is written."""
    text = WRITERS[writer](CHATS["replies at both parities"])
    record = _record({"gen_ai.input.messages": text})
    assert span_parts(record) == _from_text(record) == ["chat", "Where?"]


def test_a_chat_whose_keys_ingest_reorders_is_read_from_its_text():
    """Messages equal to the shape's but in another key order: the text is stored as
    sent, and its parse is not the shape's messages, so the text is read."""
    chat = [{"content": "Where?", "role": "user"}, {"content": "Here.", "role": "assistant"}]
    text = json.dumps([{**m, "name": "n"} for m in chat])
    record = _record({"gen_ai.input.messages": text})
    assert record.input == text
    assert record.input_messages is None


def test_redaction_and_the_trip_to_the_writer_leave_no_messages_behind():
    import pickle

    from threadline.server.ingest.writer_records import drop_what_rows_hold
    from threadline.server.redaction.redactor import redact_spans
    from threadline.server.redaction.rules import parse

    text = json.dumps(CHATS["a later turn"])
    record = _record({"gen_ai.input.messages": text})
    assert record.input_messages is not None
    assert pickle.loads(pickle.dumps(record)).input_messages is None

    redact_spans([record], parse([], [("fruit", "medlars")]))
    assert "medlars" not in (record.input or "")
    assert record.input_messages is None

    record = _record({"gen_ai.input.messages": text})
    drop_what_rows_hold([record])
    assert record.input_messages is None and record.output_messages is None


def test_a_message_nested_in_a_message_is_read_from_the_text():
    """A message holding a message (which ingest's own shape never does, but a text
    parsed as it came might): the markers after the reply then count more messages than
    follow it, and the text is read."""
    nested = {"role": "user", "content": "medlars", "quoted": [{"role": "assistant", "x": "y"}]}
    text = json.dumps([ASK, REPLY, AGAIN, nested])
    record = dataclasses.replace(
        _record({"gen_ai.input.messages": json.dumps(CHATS["a later turn"])}),
        input=text,
        input_messages=json.loads(text),
    )
    assert span_parts(record) == _from_text(record)
    assert "In Aragon, mostly." not in span_parts(record)
