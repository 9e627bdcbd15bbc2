"""Trace and session rollups, checked against totals computed here from the spans sent.

The workload is random but seeded; spans are shuffled, split across many exports and
sent twice, so out-of-order arrival, late session ids and duplicates are all covered.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field

from tests.otlp import BASE_NS, new_span_id, new_trace_id, request, span

MS = 1_000_000


@dataclass
class SentTrace:
    trace_id: str
    session_id: str | None
    user_id: str | None
    name: str
    spans: list = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0
    root_input: str | None = None
    root_output: str | None = None


def _workload(rng: random.Random, sessions: int, tag: str) -> list[SentTrace]:
    traces = []
    clock = BASE_NS
    for s in range(sessions):
        session_id = f"{tag}-session-{s}"
        user = f"user-{s % 3}"
        for turn in range(rng.randint(1, 5)):
            trace_id, root = new_trace_id(rng), new_span_id(rng)
            start = clock
            sent = SentTrace(trace_id, session_id, user, f"turn-{turn}")
            sent.root_input = json.dumps({"turn": turn, "session": session_id})
            sent.root_output = json.dumps(f"answer {turn}")
            children = []
            t = start + MS
            for c in range(rng.randint(1, 6)):
                child = new_span_id(rng)
                length = rng.randint(1, 50) * MS
                inp, out = rng.randint(10, 2000), rng.randint(1, 500)
                error = rng.random() < 0.1
                attributes = {
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": inp,
                    "gen_ai.usage.output_tokens": out,
                }
                # The session id rides on a random non-root span in a third of the
                # traces: the server must still give the whole trace to the session.
                children.append(
                    span(
                        trace_id,
                        child,
                        parent=root,
                        name=f"llm-{c}",
                        start_ns=t,
                        end_ns=t + length,
                        attributes=attributes,
                        error=error,
                    )
                )
                sent.starts.append(t)
                sent.ends.append(t + length)
                sent.input_tokens += inp
                sent.output_tokens += out
                sent.errors += error
                t += length
            end = t + MS
            carry_on_child = rng.random() < 0.33
            root_attributes = {
                "threadline.span.input": sent.root_input,
                "threadline.span.output": sent.root_output,
            }
            if carry_on_child:
                index = rng.randrange(len(children))
                for key, value in (
                    ("threadline.session.id", session_id),
                    ("threadline.user.id", user),
                ):
                    children[index].attributes.add(key=key).value.string_value = value
            else:
                root_attributes |= {"threadline.session.id": session_id, "threadline.user.id": user}
            sent.spans = [
                span(
                    trace_id,
                    root,
                    name=sent.name,
                    start_ns=start,
                    end_ns=end,
                    attributes=root_attributes,
                ),
                *children,
            ]
            sent.starts.append(start)
            sent.ends.append(end)
            traces.append(sent)
            clock = end + rng.randint(1, 30) * 1000 * MS  # idle time between turns
    return traces


def _price(input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * 0.15 + output_tokens * 0.60) / 1e6  # gpt-4o-mini


def test_rollups_match_spans_sent_in_any_order_with_duplicates(server):
    rng = random.Random(20261127)
    traces = _workload(rng, sessions=12, tag="roll")
    all_spans = [s for t in traces for s in t.spans]
    rng.shuffle(all_spans)
    for i in range(0, len(all_spans), 7):
        body = request(all_spans[i : i + 7]).SerializeToString()
        assert server.export(body).status_code == 200
    # The same exports again (an exporter retrying): nothing may change.
    before = server.get("/api/v1/sessions", limit=500, window="all")
    for i in range(0, len(all_spans), 11):
        server.send(all_spans[i : i + 11])
    assert server.get("/api/v1/sessions", limit=500, window="all") == before

    for sent in traces:
        got = server.get(f"/api/v1/traces/{sent.trace_id}")
        assert got["session_id"] == sent.session_id
        assert got["user_id"] == sent.user_id
        assert got["name"] == sent.name
        assert got["span_count"] == len(sent.spans)
        assert got["error_count"] == sent.errors
        assert got["status"] == ("error" if sent.errors else "ok")
        assert got["input_tokens"] == sent.input_tokens
        assert got["output_tokens"] == sent.output_tokens
        assert got["total_tokens"] == sent.input_tokens + sent.output_tokens
        assert abs(got["duration_ms"] - (max(sent.ends) - min(sent.starts)) / MS) < 1e-9
        assert abs(got["cost_usd"] - _price(sent.input_tokens, sent.output_tokens)) < 1e-9
        assert got["input_preview"] == sent.root_input
        assert got["output_preview"] == sent.root_output

    by_session: dict[str, list[SentTrace]] = defaultdict(list)
    for sent in traces:
        by_session[sent.session_id].append(sent)
    listed = {
        s["session_id"]: s for s in server.get("/api/v1/sessions", limit=500, window="all")["items"]
    }
    assert listed.keys() == by_session.keys()
    for session_id, members in by_session.items():
        detail = server.get(f"/api/v1/sessions/{session_id}")
        first = min(min(t.starts) for t in members)
        last = max(max(t.ends) for t in members)
        expected = {
            "session_id": session_id,
            "trace_count": len(members),
            "span_count": sum(len(t.spans) for t in members),
            "input_tokens": sum(t.input_tokens for t in members),
            "output_tokens": sum(t.output_tokens for t in members),
            "total_tokens": sum(t.input_tokens + t.output_tokens for t in members),
            "error_count": sum(1 for t in members if t.errors),
            "user_ids": [members[0].user_id],
            "first_input": min(members, key=lambda t: min(t.starts)).root_input,
            "last_output": max(members, key=lambda t: min(t.starts)).root_output,
        }
        for view in (detail, listed[session_id]):
            assert {k: view[k] for k in expected} == expected
            assert view["duration_ms"] == (last - first) / MS  # wall-clock, not a sum
            assert (
                abs(
                    view["cost_usd"] - sum(_price(t.input_tokens, t.output_tokens) for t in members)
                )
                < 1e-9
            )
        ordered = sorted(members, key=lambda t: min(t.starts))
        assert [t["trace_id"] for t in detail["traces"]] == [t.trace_id for t in ordered]


def test_session_id_on_a_span_that_arrives_in_a_later_export(server):
    trace_id, root, child = new_trace_id(), new_span_id(), new_span_id()
    first = span(trace_id, root, name="root", start_ns=BASE_NS, end_ns=BASE_NS + 10 * MS)
    server.send([first])
    assert server.get(f"/api/v1/traces/{trace_id}")["session_id"] is None
    assert server.get("/api/v1/sessions", window="all")["items"] == []

    late = span(
        trace_id,
        child,
        parent=root,
        start_ns=BASE_NS + MS,
        end_ns=BASE_NS + 20 * MS,
        attributes={"threadline.session.id": "late", "threadline.user.id": "u"},
    )
    server.send([late])
    trace = server.get(f"/api/v1/traces/{trace_id}")
    assert trace["session_id"] == "late" and trace["user_id"] == "u"
    assert trace["duration_ms"] == 20.0
    session = server.get("/api/v1/sessions/late")
    assert session["trace_count"] == 1 and session["span_count"] == 2
    assert session["user_ids"] == ["u"]


def test_children_before_parent(server):
    trace_id, root, child = new_trace_id(), new_span_id(), new_span_id()
    orphan = span(trace_id, child, parent=root, name="child", start_ns=BASE_NS + MS)
    server.send([orphan])
    assert server.get(f"/api/v1/traces/{trace_id}")["name"] == "child"  # stands in
    parent = span(trace_id, root, name="parent", start_ns=BASE_NS, end_ns=BASE_NS + 5 * MS)
    server.send([parent])
    trace = server.get(f"/api/v1/traces/{trace_id}")
    assert trace["name"] == "parent" and trace["span_count"] == 2


def test_traces_without_known_cost_have_none(server):
    trace_id, root = new_trace_id(), new_span_id()
    plain = span(trace_id, root, attributes={"threadline.session.id": "no-cost"})
    server.send([plain])
    assert server.get(f"/api/v1/traces/{trace_id}")["cost_usd"] is None
    assert server.get("/api/v1/sessions/no-cost")["cost_usd"] is None
