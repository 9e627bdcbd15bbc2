"""A worker sends the writer an export's records without their attributes once the
store has encoded them into its rows (``ingest/writer_records.py``): the answer is
smaller, and what is stored and read back is the same."""

from __future__ import annotations

import pickle
from pathlib import Path

from tests.otlp import new_span_id, new_trace_id, request, span
from threadline.server.ingest.decode import PROTOBUF
from threadline.server.ingest.prepare import Job, Prepared, prepare_export
from threadline.server.redaction.rules import RedactionRules
from threadline.server.settings import Settings
from threadline.server.store.base import SpanBatch
from threadline.server.store.sqlite import SQLiteStore

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
