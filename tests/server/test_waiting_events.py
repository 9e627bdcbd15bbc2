"""The server's index of GenAI events waiting for their span: what a worker is given,
what a committed span leaves behind as late, and its bounds."""

from __future__ import annotations

import time

from threadline.server.ingest import waiting_events
from threadline.server.ingest.waiting_events import WaitingEvents
from threadline.server.model import GenAIEvent


def event(
    span: int,
    n: int = 0,
    received_ns: int | None = None,
    output: bool = False,
    numbered: bool = False,
) -> GenAIEvent:
    return GenAIEvent(
        trace_id=f"{1:032x}",
        span_id=f"{span:016x}",
        time_ns=n,
        received_ns=time.time_ns() if received_ns is None else received_ns,
        seq=n,
        is_output=output,
        message=f'{{"n": {n}}}' if numbered else "{}",
        event_id=span * 100 + n,
    )


def key(span: int) -> tuple[str, str]:
    return (f"{1:032x}", f"{span:016x}")


def test_a_committed_span_leaves_the_events_it_did_not_take_as_late() -> None:
    waiting = WaitingEvents(900)
    assert waiting.snapshot(1) is None
    waiting.add(1, [event(5, 1, numbered=True), event(5, 0, numbered=True), event(6, 0)])
    given = waiting.snapshot(1)
    # A span's input and output messages as texts, in the order emitted, and how many.
    assert given is not None and given[key(5)] == ('[{"n": 0},{"n": 1}]', None, 2)
    assert waiting.snapshot(2) is None  # per project
    waiting.add(1, [event(5, 2)])  # came after the worker's copy
    late = waiting.settle(1, [key(5), key(7)], {key(5): 2})
    assert [e.event_id for e in late] == [502]
    assert waiting.spans_waiting(1) == 1 and list(waiting.snapshot(1) or {}) == [key(6)]
    assert waiting.settle(1, [key(6)], {key(6): 1}) == []
    assert waiting.spans_waiting(1) == 0 and waiting.count() == 0


def test_a_spans_texts_are_made_again_when_another_of_its_events_comes() -> None:
    waiting = WaitingEvents(900)
    waiting.add(1, [event(5, 0, numbered=True)])
    assert waiting.snapshot(1) == {key(5): ('[{"n": 0}]', None, 1)}
    waiting.add(1, [event(5, 2, output=True, numbered=True), event(5, 1, numbered=True)])
    assert waiting.snapshot(1) == {key(5): ('[{"n": 0},{"n": 1}]', '[{"n": 2}]', 3)}


def test_the_index_is_bounded_by_age_and_by_spans(monkeypatch) -> None:
    waiting = WaitingEvents(60)
    old = time.time_ns() - 61 * 10**9
    waiting.add(1, [event(1, received_ns=old), event(2)])
    assert list(waiting.snapshot(1) or {}) == [key(2)]
    monkeypatch.setattr(waiting_events, "MAX_WAITING_SPANS", 3)
    waiting.add(2, [event(n) for n in range(1, 6)])
    assert list(waiting.snapshot(2) or {}) == [key(3), key(4), key(5)]  # the oldest dropped


def test_the_index_is_bounded_by_weight_whatever_the_spans(monkeypatch) -> None:
    monkeypatch.setattr(waiting_events, "MAX_WAITING_BYTES", 10 * (2 + waiting_events.EVENT_BYTES))
    waiting = WaitingEvents(900)
    waiting.add(1, [event(1, n) for n in range(8)])
    waiting.add(1, [event(2, 0), event(1, 8)])  # span 1 is now the latest given one
    assert [count for _, _, count in (waiting.snapshot(1) or {}).values()] == [1, 9]
    waiting.add(1, [event(2, 1)])  # 11 events: span 1's latest came longest ago, it goes
    assert [count for _, _, count in (waiting.snapshot(1) or {}).values()] == [2]
    assert waiting.weight() == 2 * (2 + waiting_events.EVENT_BYTES)
    waiting.add(1, [event(1, n) for n in range(9, 20)])  # one span past the bound alone
    assert waiting.snapshot(1) is None and waiting.weight() == 0 and waiting.count() == 0
    waiting.add(2, [event(3)])
    assert waiting.settle(2, [key(3)], {key(3): 1}) == [] and waiting.weight() == 0


def test_events_expire_without_an_export_of_spans_asking(monkeypatch) -> None:
    waiting = WaitingEvents(60)
    old = time.time_ns() - 61 * 10**9
    waiting.add(1, [event(1, 0, received_ns=old), event(2, 0, received_ns=old)])
    waiting.add(1, [event(1, 1)])  # span 1 given a new event: it stays, 2 expires
    assert waiting.count() == 1 and list(waiting.snapshot(1) or {}) == [key(1)]
