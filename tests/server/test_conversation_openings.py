"""What names a conversation without finding another turn (``session_signals`` openings,
thread and response keys), and how the ClickHouse store places turns by them
(``store/clickhouse/inferred_sessions.place``) when nothing written before is visible."""

from __future__ import annotations

import random

from tests.chat_turns import BASE, conversation, turn_spans
from tests.otlp import request
from threadline.server.ingest.normalize import normalize_request
from threadline.server.model import SpanRecord
from threadline.server.store.clickhouse import inferred_sessions


def records(spans: list) -> list[SpanRecord]:
    return normalize_request(request(spans)).spans


def llm_signals(spans: list):
    (call,) = [r for r in records(spans) if r.parent_span_id is not None]
    assert call.session_signals is not None
    return call.session_signals


def test_every_turn_carries_its_conversations_opening_which_the_first_turn_offers():
    rng = random.Random(1)
    turns = conversation("red", BASE, rng=rng)
    other = conversation("green", BASE, rng=rng)  # the same system prompt
    signals = [llm_signals(turn_spans(turns, turn)) for turn in turns]
    openings = {s.opening for s in signals}
    assert len(openings) == 1 and None not in openings
    # The first turn's offered key (its input and reply), which the second turn asks for.
    assert signals[0].opening in signals[0].offers
    assert (signals[0].opening, "history") in signals[1].asks
    assert [s.opening_resent for s in signals] == [False, True, True]
    assert llm_signals(turn_spans(other, other[1])).opening not in openings


def test_turns_are_named_alone_whatever_arrives_first():
    rng = random.Random(2)
    turns = conversation("red", BASE, rng=rng)

    def nothing_visible(keys: list[str]) -> dict[str, str]:
        raise AssertionError("history needs no lookup")

    names = set()
    for turn in reversed(turns):
        placement = inferred_sessions.place(7, records(turn_spans(turns, turn)), nothing_visible)
        (call,) = [s for s in placement.spans if s.parent_span_id is not None]
        (root,) = [s for s in placement.spans if s.parent_span_id is None]
        assert root.session_id is None  # only the spans with signals are named
        names.add(call.session_id)
    assert len(names) == 1
    (name,) = names
    assert name.startswith("inferred-h-") and inferred_sessions.signals_of(name) == ["history"]
    assert inferred_sessions.signals_of("inferred-h-sent-by-an-app") is None


def test_a_second_responses_turn_joins_the_first_even_when_it_is_not_visible():
    rng = random.Random(3)
    turns = conversation("chain", BASE, rng=rng)
    exports = []
    for index, turn in enumerate(turns):
        extra = {"gen_ai.response.id": f"resp_{index}"}
        if index:
            extra["gen_ai.request.previous_response_id"] = f"resp_{index - 1}"
        exports.append(records(turn_spans(turns, turn, history=[], **extra)))

    asked: list[list[str]] = []

    def nothing_visible(keys: list[str]) -> dict[str, str]:
        asked.append(keys)
        return {}

    def session_of(spans: list[SpanRecord]) -> str | None:
        return next(s.session_id for s in spans if s.session_signals is not None)

    second = inferred_sessions.place(7, exports[1], nothing_visible)
    first = inferred_sessions.place(7, exports[0], nothing_visible)
    assert session_of(second.spans) == session_of(first.spans)
    assert len(asked) == 1  # the first turn asks for nothing
    # The third turn takes the session stored with the second turn's response id.
    stored = {key: session for _, key, session in second.responses}
    third = inferred_sessions.place(7, exports[2], lambda keys: stored)
    assert session_of(third.spans) == session_of(first.spans)
    # All three in one export: the batch answers itself.
    together = inferred_sessions.place(7, [s for e in exports for s in e], nothing_visible)
    assert {s.session_id for s in together.spans if s.session_signals} == {session_of(first.spans)}
