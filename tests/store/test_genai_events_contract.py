"""The GenAI log events part of the storage contract, on every backend: an event
written before its span waits (and is returned as waiting), one written after is kept
beside the span and shown in the trace's detail where the span is a model call without
an input or output of its own (one rule, ``store/genai_events.takes_late_events``);
waiting ones go after their wait, kept ones with their trace."""

from __future__ import annotations

import json

from tests.store import test_contract
from tests.store.test_contract import MS, T0
from tests.store.test_contract import record as any_record
from tests.store.test_deletion_contract import DAY
from threadline.server.model import GenAIEvent, SpanRecord
from threadline.server.retention import RetentionService
from threadline.server.store import Store

backend = test_contract.backend
store = test_contract.store


def record(trace: int, span: int, parent: int | None = None, **fields) -> SpanRecord:
    """A model call's span (``LLM``, as a GenAI chat span is typed): the spans GenAI
    events belong to."""
    return any_record(trace, span, parent, span_type="LLM", **fields)


SYSTEM = {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]}
USER = {"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]}
REPLY = {
    "role": "assistant",
    "parts": [{"type": "text", "content": "It ships today."}],
    "finish_reason": "stop",
}


def tid(n: int) -> str:
    return f"{n:032x}"


def sid(n: int) -> str:
    return f"{n:016x}"


def event(
    trace: int, span: int, message: dict, *, output: bool = False, at: int = 0, received: int = 0
) -> GenAIEvent:
    return GenAIEvent(
        trace_id=tid(trace),
        span_id=sid(span),
        time_ns=T0 + at * MS,
        received_ns=T0 + received * MS,
        seq=at,
        is_output=output,
        message=json.dumps(message),
        event_id=trace * 1000 + span * 10 + at,
    )


def call_events(trace: int, span: int, received: int = 0) -> list[GenAIEvent]:
    return [
        event(trace, span, SYSTEM, at=1, received=received),
        event(trace, span, USER, at=2, received=received),
        event(trace, span, REPLY, output=True, at=3, received=received),
    ]


def chat_span(store: Store, project: int, trace: int, span: int):
    detail = store.get_trace(project, tid(trace))
    assert detail is not None
    return next(s for s in detail.spans if s.span_id == sid(span))


def test_events_before_their_span_wait_and_are_not_shown(store: Store):
    project, other = store.create_project("p").id, store.create_project("q").id
    events = call_events(1, 11)
    assert store.write_genai_events(project, events) == events
    assert store.write_genai_events(other, call_events(2, 21)) != []
    waiting = store.waiting_genai_events(T0 - 1)
    assert sorted(e.event_id for e in waiting[project]) == sorted(e.event_id for e in events)
    assert store.waiting_genai_events(T0 + 1) == {}
    # The span is written without them (ingest writes them onto it before): the
    # waiting rows are not the trace's.
    store.write_spans(project, [record(1, 11)])
    span = chat_span(store, project, 1, 11)
    assert span.input is None and span.output is None


def test_events_after_their_span_are_kept_beside_it_and_shown(store: Store):
    project = store.create_project("p").id
    store.write_spans(project, [record(1, 11), record(1, 12, 11, input='"own"')])
    assert store.write_genai_events(project, call_events(1, 11) + call_events(1, 12)) == []
    span = chat_span(store, project, 1, 11)
    assert [m["role"] for m in span.input] == ["system", "user"]
    assert span.input[1]["content"] == "Where is my order?"
    assert span.output[0]["role"] == "assistant"
    assert span.output[0]["content"] == "It ships today."
    # A span's own input is not replaced; its missing output is shown.
    own = chat_span(store, project, 1, 12)
    assert own.input == "own"
    assert own.output[0]["content"] == "It ships today."
    # Another project's trace of the same id shows none of them.
    other = store.create_project("q").id
    store.write_spans(other, [record(1, 11)])
    assert chat_span(store, other, 1, 11).input is None


def test_late_events_show_only_on_a_model_call(store: Store):
    """The GenAI conventions emit a call's message events in the context of the call's
    span: a late event naming any other span (a plain one, a tool's) is kept with its
    trace but shown nowhere, and a model call with both its own input and output keeps
    them, on every store alike."""
    project = store.create_project("p").id
    store.write_spans(
        project,
        [
            any_record(1, 10),  # the turn around the call: a plain span
            record(1, 11, 10),
            any_record(1, 12, 10, span_type="TOOL"),
            record(1, 13, 10, input='"own question"', output='"own answer"'),
        ],
    )
    late = [e for span in (10, 11, 12, 13) for e in call_events(1, span)]
    assert store.write_genai_events(project, late) == []
    for plain in (10, 12):
        span = chat_span(store, project, 1, plain)
        assert (span.input, span.output) == (None, None)
    call = chat_span(store, project, 1, 11)
    assert [m["role"] for m in call.input] == ["system", "user"]
    assert call.output[0]["content"] == "It ships today."
    own = chat_span(store, project, 1, 13)
    assert (own.input, own.output) == ("own question", "own answer")
    # A trace with no model call to take them reads as if they were not there.
    store.write_spans(project, [any_record(2, 21)])
    store.write_genai_events(project, call_events(2, 21))
    only = store.get_trace(project, tid(2))
    assert only is not None and only.spans[0].input is None


def test_waiting_events_attached_after_their_span_are_shown(store: Store):
    project = store.create_project("p").id
    events = call_events(1, 11)
    store.write_genai_events(project, events)
    store.write_spans(project, [record(1, 11)])
    store.attach_genai_events(project, events[2:])  # came after the worker took a copy
    span = chat_span(store, project, 1, 11)
    assert span.input is None
    assert span.output[0]["content"] == "It ships today."


def test_waiting_events_go_after_their_wait_and_kept_ones_with_their_trace(store: Store):
    project = store.create_project("p").id
    store.write_spans(project, [record(1, 11), record(2, 21, start=500)])
    store.write_genai_events(project, call_events(1, 11, received=0))  # kept beside
    store.write_genai_events(project, call_events(3, 31, received=0))  # never comes
    store.write_genai_events(project, call_events(4, 41, received=100))  # still waits
    store.write_genai_events(project, call_events(2, 21, received=0))  # kept beside
    # The retention task's pass, with no wait: what was received before 50 ms goes
    # (trace 3's, whose span never came); trace 4's stays, and the kept ones too.
    RetentionService(store, 0, clock_ns=lambda: T0 + 50 * MS, event_wait_seconds=0).run_pass()
    assert {e.trace_id for e in store.waiting_genai_events(0)[project]} == {tid(4)}
    assert chat_span(store, project, 1, 11).output[0]["content"] == "It ships today."
    # Deleting a trace deletes its kept events: written again, its span shows none.
    store.delete_traces(project, [tid(1)])
    store.write_spans(project, [record(1, 11)])
    assert chat_span(store, project, 1, 11).output is None
    # Retention's expiry is a delete (or the TTL, with its trace): trace 2 expires.
    store.set_retention_days(project, 1)
    RetentionService(store, 0, clock_ns=lambda: T0 + DAY + 600 * MS).run_pass()
    assert store.get_trace(project, tid(2)) is None
    store.write_spans(project, [record(2, 21, start=500)])
    assert chat_span(store, project, 2, 21).output is None
