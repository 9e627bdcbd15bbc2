"""A worker sends the writer an export's records without their attributes, inputs and
outputs once the store has encoded them into its rows (``ingest/writer_records.py``):
the answer is smaller, and what is stored and read back is the same, for the traces
whose rollup or search document the writer makes again from the records too."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.otlp import BASE_NS, new_span_id, new_trace_id, request, span
from threadline.server.ingest.decode import PROTOBUF
from threadline.server.ingest.prepare import Job, Prepared, prepare_export
from threadline.server.model import SessionQuery, TraceQuery
from threadline.server.redaction.rules import RedactionRules
from threadline.server.settings import Settings
from threadline.server.store.base import SpanBatch
from threadline.server.store.sqlite import SQLiteStore
from threadline.server.store.trace_tally import TALLY_FROM_SPANS

_ATTRIBUTES = {
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 12,
    "app.customer.tier": "gold",
    "app.retries": 2,
}


def _body(trace_id: str, spans: int) -> bytes:
    message = request(
        span(
            trace_id,
            new_span_id(),
            name=f"step {i}",
            attributes={**_ATTRIBUTES, "threadline.span.input": f"question {i} " * 60},
        )
        for i in range(spans)
    )
    return message.SerializeToString()


def _prepared(store: SQLiteStore | None, project_id: int, body: bytes) -> Prepared:
    preparer = store.span_preparer() if store is not None else None
    job = Job(Settings(), project_id, RedactionRules(), preparer)
    prepared = prepare_export(job, body, PROTOBUF, None)
    assert isinstance(prepared, Prepared)
    return prepared


def test_records_reach_the_writer_without_the_attributes_their_rows_hold(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "threadline.db")
    try:
        project_id = store.create_project("records").id
        trace_id = new_trace_id()
        body = _body(trace_id, 40)
        prepared = _prepared(store, project_id, body)
        # Through a pickle, as the answer travels from the worker process.
        answer = pickle.loads(pickle.dumps(prepared, protocol=pickle.HIGHEST_PROTOCOL))
        assert len(answer.normalized.spans) == 40
        assert all(record.attributes == {} for record in answer.normalized.spans)
        assert all(record.input is None for record in answer.normalized.spans)
        # The answer is the smaller for it than the records whole.
        whole = _prepared(None, project_id, body)
        assert len(pickle.dumps(answer.normalized.spans)) < len(
            pickle.dumps(whole.normalized.spans)
        )

        store.write_span_batches([SpanBatch(project_id, answer.normalized.spans, answer.for_store)])
        detail = store.get_trace(project_id, trace_id)
        assert detail is not None
        assert len(detail.spans) == 40
        for stored in detail.spans:
            assert stored.attributes.items() >= _ATTRIBUTES.items()
            assert stored.input is not None
        assert detail.input_tokens == 12 * 40
    finally:
        store.close()


def test_a_store_without_a_preparer_gets_the_records_whole() -> None:
    # ClickHouse makes its rows from the records in the writer.
    prepared = _prepared(None, 1, _body(new_trace_id(), 3))
    for record in prepared.normalized.spans:
        assert record.attributes.items() >= _ATTRIBUTES.items()


def _llm_span(
    trace_id: str, span_id: str, word: str, parent: str | None, at: int, output: bool = True
) -> Span:
    payloads = {
        "threadline.span.input": json.dumps([{"role": "user", "content": f"ask{word} " * 40}])
    }
    if output:
        payloads["threadline.span.output"] = f"reply{word} " * 40
    return span(
        trace_id,
        span_id,
        parent=parent,
        name=f"call {word}",
        start_ns=BASE_NS + at * 1_000_000,
        attributes={**payloads, "session.id": "conversation"},
    )


def _export(spans: list[Span]) -> bytes:
    return request(spans).SerializeToString()


def _answer(store: SQLiteStore, project_id: int, body: bytes) -> SpanBatch:
    """``body`` as the writer gets it from a worker: prepared, through a pickle."""
    prepared = pickle.loads(pickle.dumps(_prepared(store, project_id, body), protocol=5))
    return SpanBatch(project_id, prepared.normalized.spans, prepared.for_store)


def _whole(project_id: int, body: bytes) -> SpanBatch:
    """``body``'s records whole, for the store to prepare itself."""
    return SpanBatch(project_id, _prepared(None, project_id, body).normalized.spans, None)


def _shown(store: SQLiteStore, project_id: int, trace_id: str, words: list[str]) -> object:
    """What the pages and the search show of the trace."""
    return {
        "trace": store.get_trace(project_id, trace_id),
        "traces": store.list_traces(project_id, TraceQuery()).items,
        "sessions": store.list_sessions(project_id, SessionQuery()).items,
        "found": {w: store.list_traces(project_id, TraceQuery(q=w)).items for w in words},
    }


def _split_trace() -> tuple[str, list[bytes], list[str]]:
    """A trace sent in two exports: the first has its children, the second its root
    (whose input the trace's preview shows), the rest of the children and a second
    copy of a child of the first, with other texts (the first copy is kept)."""
    trace_id, root = new_trace_id(), new_span_id()
    children = [new_span_id() for _ in range(6)]
    first = [_llm_span(trace_id, s, f"first{i}", root, i + 1) for i, s in enumerate(children[:4])]
    second = [
        _llm_span(trace_id, root, "root", None, 0),
        *(_llm_span(trace_id, s, f"second{i}", root, i + 5) for i, s in enumerate(children[4:])),
        _llm_span(trace_id, children[0], "copy", root, 1),
    ]
    words = ["askfirst0", "replyfirst3", "askroot", "replysecond1", "askcopy", "replycopy"]
    return trace_id, [_export(first), _export(second)], words


@pytest.mark.parametrize("together", [True, False], ids=["one group", "in turn"])
def test_a_trace_split_between_exports_reads_as_if_its_records_came_whole(
    tmp_path: Path, together: bool
) -> None:
    # In one group the writer rolls the trace up again from both exports' records; in
    # turn, the second export's document is made again without the span stored before.
    store = SQLiteStore(tmp_path / "threadline.db")
    try:
        trace_id, bodies, words = _split_trace()
        shown = []
        for arm in ("answer", "whole"):
            project_id = store.create_project(arm).id
            batches = [
                _answer(store, project_id, b) if arm == "answer" else _whole(project_id, b)
                for b in bodies
            ]
            if arm == "answer":
                assert all(s.input is None and s.output is None for b in batches for s in b.spans)
            if together:
                store.write_span_batches(batches)
            else:
                for batch in batches:
                    store.write_span_batches([batch])
            shown.append(_shown(store, project_id, trace_id, words))
        assert shown[0] == shown[1]
        trace = shown[0]["trace"]
        assert trace.input_preview is not None and "askroot" in trace.input_preview
        assert [t.trace_id for t in shown[0]["found"]["replysecond1"]] == [trace_id]
        assert shown[0]["found"]["askcopy"] == []  # the second copy is not stored
    finally:
        store.close()


def test_a_large_trace_and_its_later_spans_read_as_if_their_records_came_whole(
    tmp_path: Path,
) -> None:
    # A trace of TALLY_FROM_SPANS spans gets a tally, which its later spans are added to.
    store = SQLiteStore(tmp_path / "threadline.db")
    try:
        trace_id, root = new_trace_id(), new_span_id()
        # The root has no output: the trace's output preview is its last span's.
        first = [_llm_span(trace_id, root, "root", None, 0, output=False)]
        first += [
            _llm_span(trace_id, new_span_id(), f"early{i}", root, i + 1)
            for i in range(TALLY_FROM_SPANS)
        ]
        later = [_llm_span(trace_id, new_span_id(), f"late{i}", root, 5_000 + i) for i in range(3)]
        bodies = [_export(first), _export(later)]
        words = ["askearly7", "replylate2", "askroot"]
        shown = []
        for arm in ("answer", "whole"):
            project_id = store.create_project(arm).id
            for body in bodies:
                batch = (
                    _answer(store, project_id, body)
                    if arm == "answer"
                    else _whole(project_id, body)
                )
                store.write_span_batches([batch])
            shown.append(_shown(store, project_id, trace_id, words))
        assert shown[0] == shown[1]
        assert shown[0]["trace"].output_preview.startswith("replylate2")
        assert shown[0]["trace"].span_count == TALLY_FROM_SPANS + 4
    finally:
        store.close()
