"""Inferred sessions on every backend: turns sent without a session id, normalised as
ingest does (``normalize_request``: the spans' signals), written through
``Store.write_spans``, read back through the lists and the session page.

The backends name an inferred session differently (SQLite after its earliest trace,
ClickHouse after what every turn of the conversation carries: architecture.md), so
these tests compare which traces each session holds, never its name.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from tests.chat_turns import BASE, Turn, conversation, turn_spans
from tests.otlp import request
from tests.store import test_contract as contract
from threadline.server.ingest.normalize import normalize_request
from threadline.server.model import SessionQuery, TraceQuery, ns_to_datetime
from threadline.server.store import Store

backend = contract.backend
store = contract.store

WINDOW = {
    "start": ns_to_datetime(BASE) - timedelta(days=1),
    "end": ns_to_datetime(BASE) + timedelta(days=1),
}


def send(store: Store, project: int, spans: list) -> None:
    records = normalize_request(request(spans)).spans
    store.write_spans(project, records)


def sessions(store: Store, project: int) -> dict[frozenset[str], dict[str, Any]]:
    """Each session by the set of its traces' ids, with its list row and detail."""
    found = {}
    for item in store.list_sessions(project, SessionQuery(limit=200, **WINDOW)).items:
        detail = store.get_session(project, item.session_id)
        assert detail is not None
        traces = frozenset(t.trace_id for t in detail.traces)
        assert len(traces) == item.trace_count == detail.trace_count
        assert (detail.inferred, detail.inferred_by) == (item.inferred, item.inferred_by)
        found[traces] = {
            "session_id": item.session_id,
            "inferred": item.inferred,
            "inferred_by": item.inferred_by,
            "input_tokens": item.input_tokens,
            "first_input": detail.first_input or "",
            "last_output": detail.last_output or "",
        }
    return found


def ids(turns: list[Turn]) -> frozenset[str]:
    return frozenset(t.trace_id for t in turns)


def check(found: dict[frozenset[str], dict[str, Any]], conversations: list[list[Turn]]) -> None:
    assert set(found) == {ids(turns) for turns in conversations}
    for turns in conversations:
        session = found[ids(turns)]
        assert session["inferred"] is True and session["inferred_by"] == ["history"]
        assert session["input_tokens"] == sum(t.input_tokens for t in turns)
        assert turns[0].question in session["first_input"]
        assert turns[-1].reply in session["last_output"]


def test_interleaved_conversations_with_one_system_prompt_stay_apart(store: Store):
    project = store.create_project("p").id
    rng = random.Random(1)
    conversations = [conversation(name, BASE, rng=rng) for name in ("red", "green", "blue")]
    for index in range(3):
        for turns in conversations:
            send(store, project, turn_spans(turns, turns[index]))
    check(sessions(store, project), conversations)


def test_turns_in_any_order_and_sent_twice_converge(store: Store):
    project = store.create_project("p").id
    rng = random.Random(2)
    reversed_turns = conversation("late", BASE, rng=rng)
    middle_first = conversation("middle", BASE + 10**9, rng=rng)
    in_one_export = conversation("batch", BASE + 2 * 10**9, rng=rng)
    for index in (2, 1, 0):
        send(store, project, turn_spans(reversed_turns, reversed_turns[index]))
    exports = [turn_spans(middle_first, turn) for turn in middle_first]
    for index in (1, 2, 0, 1, 2):  # the second and third turns again: a retried export
        send(store, project, exports[index])
    send(store, project, [s for t in reversed(in_one_export) for s in turn_spans(in_one_export, t)])
    check(sessions(store, project), [reversed_turns, middle_first, in_one_export])


def test_an_explicit_session_id_wins_and_inference_can_be_turned_off(store: Store):
    project = store.create_project("p").id
    rng = random.Random(3)
    turns = conversation("sent", BASE, rng=rng)
    send(store, project, turn_spans(turns, turns[0]))
    send(store, project, turn_spans(turns, turns[1]))
    send(store, project, turn_spans(turns, turns[2], session_id="chosen"))
    found = sessions(store, project)
    assert set(found) == {ids(turns[:2]), ids(turns[2:])}
    assert found[ids(turns[2:])]["session_id"] == "chosen"
    assert found[ids(turns[2:])]["inferred"] is False
    assert found[ids(turns[2:])]["inferred_by"] == []
    # Off: the turns of another conversation stay without a session.
    store.set_session_inference(project, False)
    off = conversation("off", BASE + 10**9, rng=rng)
    for turn in off:
        send(store, project, turn_spans(off, turn))
    assert set(sessions(store, project)) == set(found)
    traces = store.list_traces(project, TraceQuery(limit=50, **WINDOW)).items
    assert {t.trace_id: t.session_id for t in traces if t.trace_id in ids(off)} == {
        t.trace_id: None for t in off
    }
    store.set_session_inference(project, True)
    on = conversation("on", BASE + 2 * 10**9, rng=rng)
    for turn in on:
        send(store, project, turn_spans(on, turn))
    assert ids(on) in sessions(store, project)


def test_a_thread_id_groups_turns_that_resend_nothing(store: Store):
    project = store.create_project("p").id
    rng = random.Random(4)
    threads = {"t-1": conversation("one", BASE, rng=rng), "t-2": conversation("two", BASE, rng=rng)}
    for index in (2, 0, 1):
        for thread_id, turns in threads.items():
            spans = turn_spans(
                turns,
                turns[index],
                history=[("system", "You are terse.")],
                **{"threadline.metadata.thread_id": thread_id},
            )
            send(store, project, spans)
    found = sessions(store, project)
    assert set(found) == {ids(turns) for turns in threads.values()}
    assert all(s["inferred_by"] == ["thread_id"] for s in found.values())


def test_a_responses_chain_sent_in_order_is_one_session(store: Store):
    # OpenAI's Responses API: each turn sends only its new message and names the
    # response it continues.
    project = store.create_project("p").id
    rng = random.Random(5)
    chains = [conversation(name, BASE, rng=rng) for name in ("a", "b", "c")]
    for index in range(3):
        for name, turns in zip("abc", chains, strict=True):
            extra = {"gen_ai.response.id": f"resp_{name}{index}"}
            if index:
                extra["gen_ai.request.previous_response_id"] = f"resp_{name}{index - 1}"
            send(store, project, turn_spans(turns, turns[index], history=[], **extra))
    found = sessions(store, project)
    assert set(found) == {ids(turns) for turns in chains}
    assert all(s["inferred_by"] == ["previous_response_id"] for s in found.values())
