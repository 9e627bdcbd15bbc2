"""Spans added to a large trace: its rollup comes out as if every span had been sent at
once, and adding one span costs about what writing a new trace does, rather than a read
of every span the trace already has (the store keeps a tally of large traces)."""

from __future__ import annotations

import random

from tests.conftest import ProjectClient
from tests.otlp import BASE_NS, new_span_id, new_trace_id, span

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
    at_once.send(spans)
    # Bit by bit: a large first export (the root in it), then exports of new spans, a
    # retry of some spans already stored, and single spans.
    server.send(spans[:1_500])
    server.send(spans[1_500:2_000])
    server.send(spans[1_900:2_500])  # 100 of these are stored already
    for one in spans[2_500:2_520]:
        server.send([one])
    server.send(spans[2_520:])
    assert _summary(server, trace_id) == _summary(at_once, trace_id)
    for session_id in ("s-1", "s-2"):
        mine = server.get("/api/v1/sessions", q=session_id)["items"]
        theirs = at_once.get("/api/v1/sessions", q=session_id)["items"]
        assert mine == theirs


def test_adding_a_span_to_a_large_trace_reads_none_of_its_spans_back(tmp_path) -> None:
    """What makes it cheap, checked by what the writer runs rather than by a clock (the
    timings are in docs/benchmarks.md): a trace the writer keeps a tally of gets its new
    spans added with no read of the spans it has; a small trace is read back."""
    from threadline.server.model import SpanRecord
    from threadline.server.store.sqlite import SQLiteStore
    from threadline.server.store.trace_tally import TALLY_FROM_SPANS

    def record(trace_id: str, span_id: int, parent: int | None) -> SpanRecord:
        return SpanRecord(
            trace_id=trace_id,
            span_id=f"{span_id:016x}",
            parent_span_id=None if parent is None else f"{parent:016x}",
            name="s",
            kind="INTERNAL",
            start_ns=BASE_NS + span_id,
            end_ns=BASE_NS + span_id + MS,
            status="ok",
            session_id="large",
        )

    store = SQLiteStore(tmp_path / "threadline.db")
    try:
        project = store.create_project("p").id
        large, small = "a" * 32, "b" * 32
        store.write_spans(
            project,
            [record(large, 1, None)]
            + [record(large, i, 1) for i in range(2, TALLY_FROM_SPANS + 2)],
        )
        store.write_spans(project, [record(small, 1, None), record(small, 2, 1)])
        statements: list[str] = []
        store._writer.set_trace_callback(statements.append)
        store.write_spans(project, [record(large, 10**6, 1)])
        read_back = [s for s in statements if "typeof(input)" in s]
        assert read_back == [], read_back
        store.write_spans(project, [record(small, 3, 1)])
        assert [s for s in statements if "typeof(input)" in s], "the control reads back"
        store._writer.set_trace_callback(None)
        trace = store.get_trace(project, large)
        assert trace is not None and trace.span_count == TALLY_FROM_SPANS + 2
    finally:
        store.close()
