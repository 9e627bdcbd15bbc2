"""Sessions inferred for traces sent without a session id, through the real server.

Each turn is a root span around one LLM call in OpenLLMetry's flattened message
attributes (``gen_ai.prompt.N.*``, ``gen_ai.completion.N.*``): the call's input resends
the conversation so far, as chat applications do. Totals are checked against the sums
of what was sent, and against the same turns sent with an explicit session id.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.chat_turns import BASE, Turn, conversation, turn_spans
from tests.conftest import ProjectClient
from tests.otlp import new_span_id, request, span


def sessions(server: ProjectClient) -> dict[str, dict[str, Any]]:
    return {
        s["session_id"]: s for s in server.get("/api/v1/sessions", limit=200, window="all")["items"]
    }


def expected_session(turns: list[Turn]) -> dict[str, Any]:
    return {
        "session_id": f"inferred-{turns[0].trace_id}",
        "trace_count": len(turns),
        "span_count": 2 * len(turns),
        "input_tokens": sum(t.input_tokens for t in turns),
        "output_tokens": sum(t.output_tokens for t in turns),
        "inferred": True,
        "inferred_by": ["history"],
    }


SUMMARY = ("session_id", "trace_count", "span_count", "input_tokens", "output_tokens")


def summary(session: dict[str, Any]) -> dict[str, Any]:
    return {key: session[key] for key in (*SUMMARY, "inferred", "inferred_by")}


def check(server: ProjectClient, conversations: list[list[Turn]]) -> None:
    found = sessions(server)
    assert len(found) == len(conversations)
    for turns in conversations:
        want = expected_session(turns)
        assert summary(found[want["session_id"]]) == want
        detail = server.get(f"/api/v1/sessions/{want['session_id']}")
        assert [t["trace_id"] for t in detail["traces"]] == [t.trace_id for t in turns]
        assert detail["inferred"] is True and detail["inferred_by"] == ["history"]
        # The session's previews: the first turn's question, the last turn's reply.
        assert turns[0].question in detail["first_input"]
        assert turns[-1].reply in detail["last_output"]


def test_three_interleaved_conversations_with_one_system_prompt_become_three_sessions(
    server: ProjectClient,
) -> None:
    rng = random.Random(1)
    conversations = [
        conversation(name, BASE + offset, rng=rng)
        for name, offset in (("alpha", 0), ("beta", 1_000_000_000), ("gamma", 2_000_000_000))
    ]
    # Turn by turn, the three conversations interleaved, one export per turn.
    for index in range(3):
        for turns in conversations:
            server.send(turn_spans(turns, turns[index]))
    check(server, conversations)


def test_turns_arriving_out_of_order_converge_on_one_session(server: ProjectClient) -> None:
    rng = random.Random(2)
    first = conversation("late", BASE, rng=rng)
    second = conversation("mixed", BASE + 500_000_000, rng=rng)
    # The third turn first, then the first (nothing links them yet), then the second,
    # which links both; the other conversation's turns come in one export, reversed.
    for index in (2, 0, 1):
        server.send(turn_spans(first, first[index]))
    server.send([s for t in reversed(second) for s in turn_spans(second, t)])
    # The second and third turns make a session named after the second; the first,
    # arriving last, renames it after itself.
    third = conversation("renamed", BASE + 700_000_000, rng=rng)
    server.send(turn_spans(third, third[1]))
    server.send(turn_spans(third, third[2]))
    assert sessions(server)[f"inferred-{third[1].trace_id}"]["trace_count"] == 2
    server.send(turn_spans(third, third[0]))
    check(server, [first, second, third])
    # The same turns with an explicit session id add up to the same totals.
    explicit = conversation("explicit", BASE, rng=rng)
    for turn in explicit:
        server.send(turn_spans(explicit, turn, session_id="sent-id"))
    sent = sessions(server)["sent-id"]
    assert sent["inferred"] is False and sent["inferred_by"] == []
    assert sent["trace_count"] == 3


def test_a_late_span_keeps_its_trace_in_the_inferred_session(server: ProjectClient) -> None:
    rng = random.Random(3)
    turns = conversation("tool", BASE, rng=rng)
    for turn in turns:
        server.send(turn_spans(turns, turn))
    late = span(
        turns[1].trace_id,
        new_span_id(rng),
        name="late-tool",
        start_ns=turns[1].start_ns + 200_000_000,
        attributes={"gen_ai.usage.input_tokens": 7},
    )
    server.send([late])
    turns[1].input_tokens += 7
    found = sessions(server)
    want = expected_session(turns)
    want["span_count"] += 1
    assert summary(found[want["session_id"]]) == want


def test_an_explicit_session_id_wins(server: ProjectClient) -> None:
    rng = random.Random(4)
    turns = conversation("sent", BASE, rng=rng)
    server.send(turn_spans(turns, turns[0]))
    server.send(turn_spans(turns, turns[1]))
    assert sessions(server)[f"inferred-{turns[0].trace_id}"]["trace_count"] == 2
    # The third turn names its session: it is there, not in the inferred one.
    server.send(turn_spans(turns, turns[2], session_id="chosen"))
    found = sessions(server)
    assert found["chosen"]["trace_count"] == 1 and found["chosen"]["inferred"] is False
    assert found[f"inferred-{turns[0].trace_id}"]["trace_count"] == 2
    # A late span giving the second turn an explicit id moves it out of the inferred one.
    server.send(
        [
            span(
                turns[1].trace_id,
                new_span_id(rng),
                name="tagged",
                start_ns=turns[1].start_ns + 1,
                attributes={"session.id": "chosen"},
            )
        ],
    )
    found = sessions(server)
    assert found["chosen"]["trace_count"] == 2
    assert found[f"inferred-{turns[0].trace_id}"]["trace_count"] == 1


def test_a_project_can_turn_inference_off(server: ProjectClient) -> None:
    path = "/api/v1/settings/session-inference"
    assert server.get(path) == {"enabled": True}
    response = server.http.put(path, json={"enabled": False})
    assert response.status_code == 200 and response.json() == {"enabled": False}
    assert server.get(path) == {"enabled": False}
    # true or false only: "no" or 0 is not read as a choice.
    bad_bodies = ({"enabled": "maybe"}, {}, {"enabled": True, "other": 1}, {"enabled": "no"})
    for bad in (*bad_bodies, {"enabled": 0}, {"enabled": "true"}):
        response = server.http.put(path, json=bad)
        assert response.status_code == 422 and "error" in response.json(), bad
    turns = conversation("off", BASE, rng=random.Random(5))
    for turn in turns:
        server.send(turn_spans(turns, turn))
    assert sessions(server) == {}
    assert len(server.get("/api/v1/traces", window="all")["items"]) == 3
    # On again: later turns are grouped (from what they carry from now on).
    assert server.http.put(path, json={"enabled": True}).json() == {"enabled": True}
    more = conversation("on", BASE, rng=random.Random(6))
    for turn in more:
        server.send(turn_spans(more, turn))
    assert list(sessions(server)) == [f"inferred-{more[0].trace_id}"]
    # An ingest key cannot change it.
    ingest_key = server.new_key("ingest")
    refused = httpx.put(
        server.base_url + path,
        json={"enabled": False},
        headers={"Authorization": f"Bearer {ingest_key}"},
    )
    assert refused.status_code == 403 and "error" in refused.json()


def test_a_framework_thread_id_groups_turns_without_history(server: ProjectClient) -> None:
    # LangGraph's thread id reaches the spans as a ``thread_id`` metadata key; the turns
    # resend nothing, so only the thread id ties them (and two threads stay apart).
    rng = random.Random(7)
    threads = {"t-1": conversation("one", BASE, rng=rng), "t-2": conversation("two", BASE, rng=rng)}
    for index in range(3):
        for thread_id, turns in threads.items():
            spans = turn_spans(
                turns,
                turns[index],
                history=[("system", "You are terse.")],
                **{"threadline.metadata.thread_id": thread_id},
            )
            server.send(spans)
    found = sessions(server)
    assert sorted(found) == sorted(f"inferred-{t[0].trace_id}" for t in threads.values())
    for turns in threads.values():
        session = found[f"inferred-{turns[0].trace_id}"]
        assert session["trace_count"] == 3 and session["inferred_by"] == ["thread_id"]


def test_turns_sent_at_once_from_many_exporters_converge(server: ProjectClient) -> None:
    """Nine turns of three conversations, each exported on its own connection at the
    same moment: however the writer orders them, three sessions of three turns."""
    rng = random.Random(8)
    conversations = [conversation(name, BASE, rng=rng) for name in ("red", "green", "blue")]
    bodies = [
        request(turn_spans(turns, turn)).SerializeToString()
        for turns in conversations
        for turn in turns
    ]
    barrier = threading.Barrier(len(bodies))

    def export(body: bytes) -> int:
        # As OTLP exporters do: a 503 (the server's admission gates) is retried after
        # its Retry-After.
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            barrier.wait()
            for _ in range(100):
                response = client.post(
                    "/v1/traces",
                    content=body,
                    headers={
                        "Content-Type": "application/x-protobuf",
                        "Authorization": f"Bearer {server.api_key}",
                    },
                )
                if response.status_code not in (429, 503):
                    break
                time.sleep(float(response.headers.get("retry-after", "0.1")))
            return response.status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        assert list(pool.map(export, bodies)) == [200] * len(bodies)
    assert server.get("/healthz", wait=30)["queued_exports"] == 0
    check(server, conversations)
