"""An export's ClickHouse rows (``store/clickhouse/export_rows.py``): made in the ingest
worker, as the writer would make them; a group of exports written as one insert per
table; a batch whose sessions the writer may infer left to the writer, records whole."""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from tests.otlp import new_span_id, new_trace_id, request, span
from tests.store.chdb_http import database_name, shared_server
from tests.store.test_contract import record
from threadline.server.ingest.decode import PROTOBUF
from threadline.server.ingest.prepare import Job, Prepared, prepare_export
from threadline.server.model import SessionQuery, TraceQuery
from threadline.server.redaction.rules import RedactionRules
from threadline.server.settings import Settings
from threadline.server.store import open_store
from threadline.server.store.base import SpanBatch
from threadline.server.store.clickhouse import ClickHouseStore
from threadline.server.store.clickhouse.export_rows import ExportRows

pytestmark = pytest.mark.clickhouse

_ATTRIBUTES = {"gen_ai.usage.input_tokens": 12, "app.customer.tier": "gold"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    opened = open_store(shared_server().url(database_name(tmp_path.name)))
    assert isinstance(opened, ClickHouseStore)
    yield opened
    opened.close()


def _body(trace_id: str, spans: int, **attributes: object) -> bytes:
    message = request(
        span(
            trace_id,
            new_span_id(),
            name=f"step {i}",
            attributes={
                **_ATTRIBUTES,
                **attributes,
                "threadline.span.input": f"question {i} about parcels",
            },
        )
        for i in range(spans)
    )
    return message.SerializeToString()


def _prepare_in_a_worker(store: ClickHouseStore, project_id: int, body: bytes) -> Prepared:
    """``body`` prepared in a spawned process with the store's preparer, as an ingest
    worker prepares it, and its answer unpickled here."""
    job = Job(Settings(), project_id, RedactionRules(), store.span_preparer())
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        answer = pool.submit(prepare_export, job, body, PROTOBUF, None).result()
    assert isinstance(answer, Prepared)
    return pickle.loads(pickle.dumps(answer))


def _inserts_into(store: ClickHouseStore, table: str) -> int:
    """How many inserts ``table`` of the store's fresh database took: each takes the
    table's next block number, whatever merged since."""
    ((blocks,),) = store._rows(
        "SELECT max(max_block_number) FROM system.parts"
        " WHERE database = currentDatabase() AND table = %(table)s",
        {"table": table},
    )
    return int(blocks)


def test_rows_made_in_a_worker_are_stored_as_the_writer_would_store_them(
    store: ClickHouseStore,
) -> None:
    in_worker, in_writer = store.create_project("worker").id, store.create_project("writer").id
    trace_id = new_trace_id()
    body = _body(trace_id, 30)
    prepared = _prepare_in_a_worker(store, in_worker, body)
    assert isinstance(prepared.for_store, ExportRows)
    # The rows hold the attributes: the records come back without them.
    assert all(record.attributes == {} for record in prepared.normalized.spans)
    store.write_span_batches([SpanBatch(in_worker, prepared.normalized.spans, prepared.for_store)])
    whole = prepare_export(Job(Settings(), in_writer, RedactionRules(), None), body, PROTOBUF, None)
    assert isinstance(whole, Prepared)
    store.write_spans(in_writer, whole.normalized.spans)

    from_worker = store.get_trace(in_worker, trace_id)
    from_writer = store.get_trace(in_writer, trace_id)
    assert from_worker is not None and from_writer is not None
    assert len(from_worker.spans) == 30 and from_worker.input_tokens == 12 * 30
    for stored in from_worker.spans:
        assert stored.attributes.items() >= _ATTRIBUTES.items()
    assert from_worker.model_dump(exclude={"project_id"}) == from_writer.model_dump(
        exclude={"project_id"}
    )
    found = store.list_traces(in_worker, TraceQuery(q="parcels"))
    assert [t.trace_id for t in found.items] == [trace_id]


def test_a_batch_whose_session_may_be_inferred_is_left_to_the_writer(
    store: ClickHouseStore,
) -> None:
    project_id = store.create_project("inferred").id
    store.set_session_inference(project_id, True)
    trace_id = new_trace_id()
    prepared = _prepare_in_a_worker(
        store, project_id, _body(trace_id, 3, **{"langgraph.thread_id": "thread-7"})
    )
    # Naming the session may read what other servers stored: the worker makes nothing
    # and the records keep their attributes for the writer to make the rows.
    assert prepared.for_store is None
    assert all(r.attributes.items() >= _ATTRIBUTES.items() for r in prepared.normalized.spans)
    store.write_span_batches([SpanBatch(project_id, prepared.normalized.spans, None)])
    trace = store.get_trace(project_id, trace_id)
    assert trace is not None and trace.session_id is not None
    assert trace.session_id.startswith("inferred-t-")
    assert all(s.attributes.items() >= _ATTRIBUTES.items() for s in trace.spans)
    sessions = store.list_sessions(project_id, SessionQuery()).items
    assert [s.session_id for s in sessions] == [trace.session_id]


def test_a_group_of_exports_is_one_insert_per_table(store: ClickHouseStore) -> None:
    project_id = store.create_project("group").id
    batches = [
        SpanBatch(project_id, [record(trace, trace * 10, session="s", input=f'"q{trace}"')])
        for trace in (1, 2, 3)
    ]
    store.write_span_batches(batches)
    assert _inserts_into(store, "spans") == 1
    assert _inserts_into(store, "search_text") == 1
    session = store.get_session(project_id, "s")
    assert session is not None and session.trace_count == 3 and session.span_count == 3
