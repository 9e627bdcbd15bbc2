"""Spans added to a large trace: its rollup comes out as if every span had been sent at
once, and adding one span costs about what writing a new trace does, rather than a read
of every span the trace already has (the store keeps a tally of large traces)."""

from __future__ import annotations

import random
import statistics
import time

import pytest

from tests.conftest import ProjectClient
from tests.otlp import BASE_NS, new_span_id, new_trace_id, request, span

MS = 1_000_000


def _spans(trace_id: str, count: int, rng: random.Random) -> list:
    root_id = new_span_id(rng)
    spans = [
        span(
            trace_id,
            root_id,
            name="agent",
            start_ns=BASE_NS,
            end_ns=BASE_NS + 10**6 * MS,
            attributes={"threadline.span.input": "the question"},
        )
    ]
    ids = [root_id]
    for i in range(1, count):
        attributes: dict = {}
        if rng.random() < 0.3:
            attributes["gen_ai.usage.cost"] = rng.random() / 100
            attributes["gen_ai.usage.input_tokens"] = rng.randrange(500)
            attributes["gen_ai.usage.output_tokens"] = rng.randrange(200)
        if rng.random() < 0.05:
            attributes["threadline.session.id"] = rng.choice(["s-1", "s-2"])
            attributes["threadline.user.id"] = rng.choice(["u-1", "u-2"])
        if rng.random() < 0.05:
            attributes["threadline.metadata." + rng.choice("abc")] = rng.choice("xyz")
            attributes["threadline.tags"] = rng.sample(["p", "q", "r", "s"], 2)
        if rng.random() < 0.2:
            attributes["threadline.span.output"] = f"output {i}"
        start = BASE_NS + rng.randrange(10**6) * MS
        span_id = new_span_id(rng)
        spans.append(
            span(
                trace_id,
                span_id,
                parent=rng.choice(ids[-50:]),
                name=f"step {i}",
                start_ns=start,
                end_ns=start + rng.choice([0, 5, 5, 10**6]) * MS,
                attributes=attributes,
                error=rng.random() < 0.02,
            )
        )
        ids.append(span_id)
    return spans


def _export(server: ProjectClient, spans: list) -> None:
    response = server.export(request(spans).SerializeToString())
    assert response.status_code == 200, response.text


def _summary(server: ProjectClient, trace_id: str) -> dict:
    trace = server.get(f"/api/v1/traces/{trace_id}")
    del trace["spans"]
    return trace


def test_spans_added_to_a_large_trace_roll_up_as_if_sent_at_once(
    server: ProjectClient, threadline_process
) -> None:
    rng = random.Random(7)
    trace_id = new_trace_id(rng)
    spans = _spans(trace_id, 3_000, rng)
    # All at once, in another project: a trace new to the store, rolled up in one go.
    at_once = ProjectClient(server.base_url, threadline_process.new_key("at-once"), server.process)
    _export(at_once, spans)
    # Bit by bit: a large first export (the root in it), then exports of new spans, a
    # retry of some spans already stored, and single spans.
    _export(server, spans[:1_500])
    _export(server, spans[1_500:2_000])
    _export(server, spans[1_900:2_500])  # 100 of these are stored already
    for one in spans[2_500:2_520]:
        _export(server, [one])
    _export(server, spans[2_520:])
    assert _summary(server, trace_id) == _summary(at_once, trace_id)
    for session_id in ("s-1", "s-2"):
        mine = server.get("/api/v1/sessions", q=session_id)["items"]
        theirs = at_once.get("/api/v1/sessions", q=session_id)["items"]
        assert mine == theirs


@pytest.mark.slow  # 30,000 spans to send first
def test_adding_a_span_to_a_large_trace_costs_about_what_a_new_trace_does(
    server: ProjectClient,
) -> None:
    rng = random.Random(11)
    trace_id = new_trace_id(rng)
    spans = _spans(trace_id, 30_000, rng)
    for i in range(0, len(spans), 10_000):
        _export(server, spans[i : i + 10_000])
    root_id = spans[0].span_id.hex()

    def timed(trace: str) -> float:
        child = span(trace, new_span_id(rng), parent=root_id, start_ns=BASE_NS + MS)
        body = request([child]).SerializeToString()
        started = time.perf_counter()
        assert server.export(body).status_code == 200
        return time.perf_counter() - started

    into_large = statistics.median(timed(trace_id) for _ in range(9))
    into_new = statistics.median(timed(new_trace_id(rng)) for _ in range(9))
    # Reading 30,000 spans back took ~40 times a new trace's write; now about the same.
    assert into_large < 4 * into_new + 0.02, (into_large, into_new)
    assert server.get(f"/api/v1/traces/{trace_id}")["span_count"] == 30_009
