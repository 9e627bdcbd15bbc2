"""The GenAI log events part of the storage contract, on every backend: an event
written before its span waits (and is returned as waiting), one written after is kept
beside the span and shown in the trace's detail where the span is a model call without
an input or output of its own (one rule, ``store/genai_events.takes_late_events``);
waiting ones go after their wait, kept ones with their trace."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from tests.chat_turns import BASE, conversation, turn_spans
from tests.otlp import request
from tests.store import test_contract
from tests.store.test_contract import MS, T0
from tests.store.test_contract import record as any_record
from tests.store.test_deletion_contract import DAY
from tests.store.test_metric_aggregates import assert_the_aggregates_equal_the_rollups
from threadline.server.ingest.log_events import fill_with_late_events
from threadline.server.ingest.normalize import normalize_request
from threadline.server.model import (
    GenAIEvent,
    SessionQuery,
    SpanRecord,
    TraceQuery,
    ns_to_datetime,
)
from threadline.server.retention import RetentionService
from threadline.server.store import Store
from threadline.server.store.sqlite.store import SQLiteStore

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


def _filled(store: Store, project: int, events: list[GenAIEvent]) -> int:
    """What the ingest writer does with late events: the model calls they name that
    take them are filled and written again."""
    by_span: dict[tuple[str, str], list[GenAIEvent]] = {}
    for e in events:
        by_span.setdefault((e.trace_id, e.span_id), []).append(e)
    spans = store.spans_taking_late_events(project, list(by_span))
    for span in spans:
        assert fill_with_late_events(span, by_span[(span.trace_id, span.span_id)])
    return store.replace_spans(project, spans)


def test_late_events_that_fill_a_model_call_reach_its_previews_search_and_export(
    store: Store,
):
    project = store.create_project("p").id
    store.write_spans(
        project,
        [
            any_record(1, 10, session="s", user="u"),  # the turn: a plain span
            record(1, 11, 10, start=1, tokens=(3, 4)),
            record(2, 21, start=50, session="s", output='"own answer"'),
        ],
    )
    late = call_events(1, 11) + call_events(1, 10) + call_events(2, 21)
    assert store.write_genai_events(project, late) == []
    # The plain span takes none; trace 2's call only the input it lacks.
    taking = store.spans_taking_late_events(
        project, [(tid(1), sid(10)), (tid(1), sid(11)), (tid(2), sid(21)), (tid(9), sid(9))]
    )
    assert sorted((s.trace_id, s.span_id) for s in taking) == [(tid(1), sid(11)), (tid(2), sid(21))]
    assert _filled(store, project, late) == 2
    call = chat_span(store, project, 1, 11)
    assert [m["role"] for m in call.input] == ["system", "user"]
    assert call.output[0]["content"] == "It ships today."
    assert "gen_ai.input.messages" in call.attributes  # as if the events came first
    assert (call.input_tokens, call.output_tokens) == (3, 4)
    own = chat_span(store, project, 2, 21)
    assert own.output == "own answer" and own.input[1]["content"] == "Where is my order?"
    # The lists' previews, the session's first input and last output, search.
    page = store.list_traces(project, TraceQuery())
    previews = {t.trace_id: (t.input_preview_text, t.output_preview_text) for t in page.items}
    assert previews == {
        tid(1): ("Where is my order?", "It ships today."),
        tid(2): ("Where is my order?", "own answer"),
    }
    [trace] = [t for t in page.items if t.trace_id == tid(1)]
    assert (trace.span_count, trace.total_tokens, trace.session_id) == (2, 7, "s")
    session = store.get_session(project, "s")
    assert session is not None
    assert (session.first_input_text, session.last_output_text) == (
        "Where is my order?",
        "own answer",
    )
    found = store.list_traces(project, TraceQuery(q="ships"))
    assert [t.trace_id for t in found.items] == [tid(1)]
    # A span written again is found once, by what it held before and what it took.
    for q in ("own answer", "order"):
        matches = store.find_in_session(project, "s", q)
        assert [m.span_id for m in matches if m.trace_id == tid(2)] == [sid(21)], q
    # The export's documents are the detail's.
    exported = json.loads(store.trace_details_json(project, [tid(1)])[tid(1)])
    assert exported["spans"][1]["input"] == call.input
    # Written again, a filled span is stored once.
    assert [s.span_id for s in chat_span_list(store, project, 1)] == [sid(10), sid(11)]


def test_a_span_whose_trace_went_is_not_written_again(store: Store):
    project = store.create_project("p").id
    store.write_spans(project, [record(1, 11)])
    store.write_genai_events(project, call_events(1, 11))
    [span] = store.spans_taking_late_events(project, [(tid(1), sid(11))])
    assert fill_with_late_events(span, call_events(1, 11))
    store.delete_traces(project, [tid(1)])
    assert store.replace_spans(project, [span]) == 0
    assert store.get_trace(project, tid(1)) is None


def chat_span_list(store: Store, project: int, trace: int):
    detail = store.get_trace(project, tid(trace))
    assert detail is not None
    return detail.spans


def test_a_filled_span_is_stored_as_if_it_came_with_its_messages(store: Store):
    """Late events' fill gives the rollups, the session, the trace's detail (and on
    SQLite the dashboard's aggregates) the store would hold had the span come with
    them: one project takes them late, the other gets the filled spans first."""
    late_project, first_project = store.create_project("p").id, store.create_project("q").id
    spans = [
        any_record(1, 10, session="s", user="u"),
        record(1, 11, 10, start=1, tokens=(3, 4), cost=0.5),
        record(2, 21, start=50, session="s", tokens=(1, 1)),
    ]
    store.write_spans(late_project, spans)
    late = call_events(1, 11) + call_events(2, 21)
    store.write_genai_events(late_project, late)
    assert _filled(store, late_project, late) == 2
    filled = [
        record(1, 11, 10, start=1, tokens=(3, 4), cost=0.5),
        record(2, 21, start=50, session="s", tokens=(1, 1)),
    ]
    for span in filled:
        events = [e for e in late if e.span_id == span.span_id]
        assert fill_with_late_events(span, events)
    store.write_spans(first_project, [spans[0], *filled])

    def seen(project: int) -> tuple:
        traces = store.list_traces(project, TraceQuery()).items
        session = store.get_session(project, "s")
        details = [store.get_trace(project, t.trace_id) for t in traces]
        return (
            [t.model_dump() for t in traces],
            session and session.model_dump(),
            [d and d.model_dump() for d in details],
        )

    assert seen(late_project) == seen(first_project)
    if isinstance(store, SQLiteStore):
        assert_the_aggregates_equal_the_rollups(store, late_project)


def test_a_filled_call_keeps_its_trace_in_its_inferred_session(store: Store):
    """A conversation sent without session ids is one inferred session; its last call
    came without its reply, which a late choice event gives it: written again, the
    trace stays in the session, whose last output is now that reply."""
    project = store.create_project("p").id
    turns = conversation("late", BASE, rng=random.Random(4))
    for turn in turns:
        spans = turn_spans(turns, turn)
        if turn is turns[-1]:
            for key in ("gen_ai.completion.0.role", "gen_ai.completion.0.content"):
                spans[1].attributes.remove(next(a for a in spans[1].attributes if a.key == key))
        store.write_spans(project, normalize_request(request(spans)).spans)
    call = spans[1]
    reply = {"role": "assistant", "parts": [{"type": "text", "content": turns[-1].reply}]}
    late = GenAIEvent(
        trace_id=call.trace_id.hex(),
        span_id=call.span_id.hex(),
        time_ns=BASE,
        received_ns=BASE,
        seq=0,
        is_output=True,
        message=json.dumps(reply),
        event_id=1,
    )

    def the_session() -> tuple[set[str], str | None, bool]:
        query = SessionQuery(
            start=ns_to_datetime(BASE) - timedelta(days=1),
            end=ns_to_datetime(BASE) + timedelta(days=1),
        )
        [item] = store.list_sessions(project, query).items
        detail = store.get_session(project, item.session_id)
        assert detail is not None
        traces = {t.trace_id for t in detail.traces}
        return traces, detail.last_output_text, item.inferred

    traces, last_output, inferred = the_session()
    assert traces == {t.trace_id for t in turns} and inferred
    assert last_output != turns[-1].reply
    store.write_genai_events(project, [late])
    assert _filled(store, project, [late]) == 1
    assert the_session() == (traces, turns[-1].reply, True)
