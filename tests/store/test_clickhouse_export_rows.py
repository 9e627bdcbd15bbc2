"""An export's ClickHouse rows (``store/clickhouse/export_rows.py``): made in the ingest
worker, as the writer would make them, from records that then come back without their
attributes, inputs and outputs, the batch's inferred sessions named there as the writer
names them; a group of exports written as one insert per table; a batch whose sessions
only the writer can name (a Responses turn continuing another export's, or the
project's setting not known to the job, ``inference.py``) left to the writer, records
whole; rows that are not the batch's an error."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import pickle
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from pydantic import BaseModel

from tests.chat_turns import BASE, Turn, conversation, turn_spans
from tests.otlp import BASE_NS, new_span_id, new_trace_id, request, span
from tests.store.chdb_http import database_name, shared_server
from tests.store.test_contract import record
from threadline.server.ingest.decode import PROTOBUF
from threadline.server.ingest.prepare import Job, Prepared, prepare_export
from threadline.server.ingest.writer import SpanWriter
from threadline.server.model import SessionQuery, TraceQuery
from threadline.server.redaction.rules import RedactionRules
from threadline.server.settings import Settings
from threadline.server.store import open_store
from threadline.server.store.base import PreparedForAnother, SpanBatch
from threadline.server.store.clickhouse import ClickHouseStore, inference
from threadline.server.store.clickhouse.export_rows import ExportRows, RowsPreparer

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


def _preparer(store: ClickHouseStore, project_id: int) -> RowsPreparer:
    """The store's preparer for the project as the pipeline asks for it: as known, else
    read (off its event loop)."""
    preparer = store.span_preparer(project_id) or store.span_preparer(project_id, read=True)
    assert preparer is not None
    return preparer


def _prepare_in_a_worker(store: ClickHouseStore, project_id: int, body: bytes) -> Prepared:
    """``body`` prepared in a spawned process with the store's preparer, as an ingest
    worker prepares it, and its answer unpickled here."""
    job = Job(Settings(), project_id, RedactionRules(), _preparer(store, project_id))
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


def test_a_batch_whose_session_only_the_writer_can_name_is_left_to_it(
    store: ClickHouseStore,
) -> None:
    project_id = store.create_project("inferred").id
    store.set_session_inference(project_id, True)
    first, trace_id = new_trace_id(), new_trace_id()
    earlier = _prepare_in_a_worker(
        store, project_id, _body(first, 1, **{"gen_ai.response.id": "resp_1"})
    )
    # A first turn is named by its own response: in the worker, which gives the writer
    # the response's session to store.
    assert isinstance(earlier.for_store, ExportRows) and len(earlier.for_store.responses) == 1
    store.write_span_batches([SpanBatch(project_id, earlier.normalized.spans, earlier.for_store)])
    prepared = _prepare_in_a_worker(
        store,
        project_id,
        _body(trace_id, 3, **{"gen_ai.request.previous_response_id": "resp_1"}),
    )
    # A turn continuing a response of another export takes the session stored for it,
    # which only the writer reads: the worker makes nothing and the records keep their
    # attributes for the writer to make the rows.
    assert prepared.for_store is None
    assert all(r.attributes.items() >= _ATTRIBUTES.items() for r in prepared.normalized.spans)
    store.write_span_batches([SpanBatch(project_id, prepared.normalized.spans, None)])
    trace = store.get_trace(project_id, trace_id)
    assert trace is not None and trace.session_id is not None
    assert trace.session_id.startswith("inferred-r-")
    assert all(s.attributes.items() >= _ATTRIBUTES.items() for s in trace.spans)
    sessions = store.list_sessions(project_id, SessionQuery()).items
    assert [(s.session_id, s.trace_count) for s in sessions] == [(trace.session_id, 2)]


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


def _prepared(store: ClickHouseStore | None, project_id: int, body: bytes) -> Prepared:
    """``body`` prepared as a worker prepares it for ``project_id`` (``store``'s preparer
    as the pipeline asks for it; None: no preparer, the records whole), through a pickle."""
    preparer = None if store is None else _preparer(store, project_id)
    prepared = prepare_export(
        Job(Settings(), project_id, RedactionRules(), preparer), body, PROTOBUF, None
    )
    assert isinstance(prepared, Prepared)
    return pickle.loads(pickle.dumps(prepared, protocol=pickle.HIGHEST_PROTOCOL))


_SIGNALS = {"langgraph.thread_id": "thread-7"}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The inference setting's clock, moved by the test (``clock[0]``: now)."""
    now = [1_000.0]
    monkeypatch.setattr(inference, "monotonic", lambda: now[0])
    return now


def test_a_project_that_infers_no_sessions_gets_its_rows_made_in_the_worker(
    store: ClickHouseStore,
) -> None:
    off, on = store.create_project("off").id, store.create_project("on").id
    store.set_session_inference(off, False)
    store.set_session_inference(on, True)
    off_trace, on_trace = new_trace_id(), new_trace_id()
    from_off = _prepared(store, off, _body(off_trace, 3, **_SIGNALS))
    from_on = _prepared(store, on, _body(on_trace, 3, **_SIGNALS))
    # Off: nothing to infer, the rows made in the worker and the records without texts.
    assert isinstance(from_off.for_store, ExportRows)
    assert all(r.attributes == {} and r.input is None for r in from_off.normalized.spans)
    # On: the session named in the worker too (a thread id needs no read).
    assert isinstance(from_on.for_store, ExportRows)
    assert all(r.attributes == {} and r.input is None for r in from_on.normalized.spans)
    store.write_span_batches(
        [
            SpanBatch(off, from_off.normalized.spans, from_off.for_store),
            SpanBatch(on, from_on.normalized.spans, from_on.for_store),
        ]
    )
    not_inferred = store.get_trace(off, off_trace)
    assert not_inferred is not None and not_inferred.session_id is None
    assert all(s.attributes.items() >= _ATTRIBUTES.items() for s in not_inferred.spans)
    assert store.list_sessions(off, SessionQuery()).items == []
    inferred = store.get_trace(on, on_trace)
    assert inferred is not None and inferred.session_id is not None
    assert inferred.session_id.startswith("inferred-t-")
    # Turned on here: the next export's job knows it at once.
    store.set_session_inference(off, True)
    assert store.span_preparer(off).infers_sessions is True


def _turn_inference_on_elsewhere(tmp_path: Path, project_id: int) -> None:
    """Another server on the same database turns the project's inference on."""
    there = open_store(shared_server().url(database_name(tmp_path.name)))
    try:
        there.set_session_inference(project_id, True)
    finally:
        there.close()


def test_a_setting_changed_on_another_server_is_followed_within_setting_seconds(
    store: ClickHouseStore, tmp_path: Path, clock: list[float]
) -> None:
    project_id = store.create_project("changed").id
    store.set_session_inference(project_id, False)
    _turn_inference_on_elsewhere(tmp_path, project_id)
    # Within SETTING_SECONDS of this server's last read, its jobs follow what it read.
    clock[0] += inference.SETTING_SECONDS * 0.9
    assert store.span_preparer(project_id).infers_sessions is False
    # Then it is not known without a read: no preparer. The pipeline asks again, off
    # its event loop, with ``read``: the job follows the change, its session named in
    # the worker.
    clock[0] += inference.SETTING_SECONDS * 0.1
    assert store.span_preparer(project_id) is None
    trace_id = new_trace_id()
    prepared = _prepared(store, project_id, _body(trace_id, 3, **_SIGNALS))
    assert isinstance(prepared.for_store, ExportRows)
    store.write_span_batches([SpanBatch(project_id, prepared.normalized.spans, prepared.for_store)])
    trace = store.get_trace(project_id, trace_id)
    assert trace is not None and trace.session_id is not None
    assert store.span_preparer(project_id).infers_sessions is True


def test_the_writer_keeps_the_setting_of_a_project_sending_signals_known(
    store: ClickHouseStore, tmp_path: Path, clock: list[float]
) -> None:
    project_id = store.create_project("busy").id
    store.set_session_inference(project_id, False)
    _turn_inference_on_elsewhere(tmp_path, project_id)
    # Past half of SETTING_SECONDS: the job still follows "off" (rows made in the
    # worker), and the writer, writing them, reads the setting again.
    clock[0] += inference.SETTING_SECONDS * 0.6
    first = _prepared(store, project_id, _body(new_trace_id(), 3, **_SIGNALS))
    assert isinstance(first.for_store, ExportRows)
    store.write_span_batches([SpanBatch(project_id, first.normalized.spans, first.for_store)])
    # Past the first read's SETTING_SECONDS: the job knows the setting read since.
    clock[0] += inference.SETTING_SECONDS * 0.6
    assert store.span_preparer(project_id).infers_sessions is True
    trace_id = new_trace_id()
    second = _prepared(store, project_id, _body(trace_id, 3, **_SIGNALS))
    assert isinstance(second.for_store, ExportRows)
    store.write_span_batches([SpanBatch(project_id, second.normalized.spans, second.for_store)])
    trace = store.get_trace(project_id, trace_id)
    assert trace is not None and trace.session_id is not None


def test_rows_that_are_not_the_batchs_are_an_error(store: ClickHouseStore) -> None:
    made_for, written_to = store.create_project("made for").id, store.create_project("to").id
    trace_id = new_trace_id()
    prepared = _prepared(store, made_for, _body(trace_id, 3))
    assert isinstance(prepared.for_store, ExportRows)
    with pytest.raises(PreparedForAnother, match=f"for project {made_for}, not {written_to}"):
        store.write_span_batches(
            [SpanBatch(written_to, prepared.normalized.spans, prepared.for_store)]
        )
    with pytest.raises(PreparedForAnother, match="not ClickHouse rows"):
        store.write_span_batches([SpanBatch(written_to, prepared.normalized.spans, object())])
    # Nothing of it is stored, for either project.
    assert store.get_trace(written_to, trace_id) is None
    assert store.get_trace(made_for, trace_id) is None


def test_the_writer_fails_only_the_export_whose_rows_are_not_its_own(
    store: ClickHouseStore,
) -> None:
    good_project, other = store.create_project("good").id, store.create_project("other").id
    good_trace, bad_trace = new_trace_id(), new_trace_id()
    good = _prepared(store, good_project, _body(good_trace, 3))
    bad = _prepared(store, other, _body(bad_trace, 3))
    writer = SpanWriter(store)

    async def both() -> list[BaseException | None]:
        return list(
            await asyncio.gather(
                writer.write(good_project, good),
                writer.write(good_project, bad),
                return_exceptions=True,
            )
        )

    try:
        answers = asyncio.run(both())
    finally:
        writer.close()
    assert answers[0] is None
    assert isinstance(answers[1], PreparedForAnother)
    trace = store.get_trace(good_project, good_trace)
    assert trace is not None and len(trace.spans) == 3
    assert store.get_trace(good_project, bad_trace) is None


def _texts(word: str, i: int) -> dict[str, object]:
    return {
        "threadline.span.input": json.dumps([{"role": "user", "content": f"ask{word} {i}"}]),
        "threadline.span.output": f"reply{word} {i} " * 20,
        "session.id": f"conversation-{word[0]}",
        "app.customer.tier": "gold",
    }


def _exports() -> list[list[bytes]]:
    """Groups of exports, as a writer takes them: a session of two traces, one of which
    is split between two exports of a group, and a trace whose spans came before."""
    split, later, alone = new_trace_id(), new_trace_id(), new_trace_id()
    root = new_span_id()

    def one(
        trace_id: str, word: str, at: int, parent: str | None = None, span_id: str | None = None
    ) -> bytes:
        return request(
            [
                span(
                    trace_id,
                    span_id or new_span_id(),
                    parent=parent,
                    name=f"call {word}",
                    start_ns=BASE_NS + at * 1_000_000,
                    attributes=_texts(word, at),
                )
            ]
        ).SerializeToString()

    return [
        [
            one(split, "alpha", 0, span_id=root),
            one(split, "beta", 5, parent=root),
            one(alone, "gamma", 7),
        ],
        [one(later, "delta", 20), one(alone, "epsilon", 30)],
        [one(split, "zeta", 40, parent=root)],
    ]


def test_exports_prepared_in_the_worker_read_as_if_written_whole(store: ClickHouseStore) -> None:
    prepared_in_worker = store.create_project("worker").id
    whole = store.create_project("whole").id
    for group in _exports():
        batches = []
        for body in group:
            answer = _prepared(store, prepared_in_worker, body)
            assert isinstance(answer.for_store, ExportRows)
            assert all(r.input is None and r.output is None for r in answer.normalized.spans)
            batches.append(SpanBatch(prepared_in_worker, answer.normalized.spans, answer.for_store))
        store.write_span_batches(batches)
        records = [_prepared(None, whole, body) for body in group]
        assert all(r.output is not None for p in records for r in p.normalized.spans)
        store.write_span_batches([SpanBatch(whole, p.normalized.spans, None) for p in records])

    traces = store.list_traces(whole, TraceQuery()).items
    assert len(traces) == 3
    assert len(store.list_sessions(whole, SessionQuery()).items) == 3
    for trace in traces:
        detail = store.get_trace(whole, trace.trace_id)
        assert detail is not None and all(s.output for s in detail.spans)
    words = ("askalpha", "replybeta", "replyzeta", "askepsilon", "replygamma")
    _assert_reads_alike(store, prepared_in_worker, whole, words)


def _assert_reads_alike(
    store: ClickHouseStore, project: int, reference: int, words: tuple[str, ...]
) -> None:
    """``project``'s lists, details and searches for ``words`` read as ``reference``'s,
    but for the project; each word finds a trace."""

    def same(read: object, expected: object) -> None:
        assert _without_project(read) == _without_project(expected)

    traces = store.list_traces(reference, TraceQuery()).items
    same(store.list_traces(project, TraceQuery()).items, traces)
    sessions = store.list_sessions(reference, SessionQuery()).items
    same(store.list_sessions(project, SessionQuery()).items, sessions)
    for trace in traces:
        same(store.get_trace(project, trace.trace_id), store.get_trace(reference, trace.trace_id))
    for session in sessions:
        same(
            store.get_session(project, session.session_id),
            store.get_session(reference, session.session_id),
        )
    for word in words:
        hits = store.list_traces(reference, TraceQuery(q=word)).items
        assert hits, word
        same(store.list_traces(project, TraceQuery(q=word)).items, hits)
        same(
            store.list_sessions(project, SessionQuery(q=word)).items,
            store.list_sessions(reference, SessionQuery(q=word)).items,
        )
        for session in sessions:
            same(
                store.find_in_session(project, session.session_id, word),
                store.find_in_session(reference, session.session_id, word),
            )


def _without_project(read: object) -> object:
    """A read as plain data, without the project it was read from."""
    if isinstance(read, list):
        return [_without_project(item) for item in read]
    if isinstance(read, BaseModel):
        return read.model_dump(exclude={"project_id"})
    return read


def _responses_turn(trace_id: str, at: int, response: str, previous: str | None) -> list[Span]:
    """A turn of a Responses chain: a root around one call that received ``response``
    and continued ``previous``."""
    root = new_span_id()
    call = {"gen_ai.response.id": response, "threadline.span.input": f"respond {response}"}
    if previous is not None:
        call["gen_ai.request.previous_response_id"] = previous
    return [
        span(trace_id, root, name="agent turn", start_ns=at, end_ns=at + 2_000_000_000),
        span(
            trace_id,
            new_span_id(),
            parent=root,
            name="responses.create",
            start_ns=at + 100_000_000,
            end_ns=at + 1_900_000_000,
            attributes=call,
        ),
    ]


def _conversations() -> list[list[tuple[list[Span], bool]]]:
    """Groups of exports of conversations sent without session ids (chats resending
    their history, a thread id, a Responses chain) and of one that names its session on
    each turn's root, whose calls arrive before their roots; each export with whether
    the worker can name its sessions (all but a turn continuing a response that another
    export carried)."""
    rng = random.Random(7)
    red = conversation("red", BASE, rng=rng)
    blue = conversation("blue", BASE + 1_000_000_000, rng=rng)
    thread = conversation("thread", BASE + 2_000_000_000, rng=rng)
    chain = [new_trace_id(rng) for _ in range(3)]
    at = [BASE + 3_000_000_000 + i * 10_000_000_000 for i in range(3)]

    def chat(turns: list[Turn], i: int) -> list[Span]:
        return turn_spans(turns, turns[i])

    def named(i: int) -> list[Span]:
        return turn_spans(blue, blue[i], session_id="blue-session")

    def threaded(i: int) -> list[Span]:
        return turn_spans(thread, thread[i], **{"threadline.metadata.thread_id": "th-9"})

    return [
        [
            (chat(red, 0), True),
            (named(0)[1:], True),  # the call, its root (and the session id) still to come
            (
                _responses_turn(chain[0], at[0], "resp_a", None)
                + _responses_turn(chain[1], at[1], "resp_b", "resp_a"),
                True,
            ),
            (threaded(0), True),
        ],
        [
            (named(0)[:1], True),
            (chat(red, 1)[1:], True),
            (_responses_turn(chain[2], at[2], "resp_c", "resp_b"), False),
            (named(1), True),
            (threaded(1), True),
        ],
        [(chat(red, 1)[:1] + chat(red, 2), True), (named(2)[1:], True), (threaded(2)[1:], True)],
        [(named(2)[:1], True), (threaded(2)[:1], True)],
    ]


def test_sessions_named_in_the_worker_read_as_if_the_writer_named_them(
    store: ClickHouseStore, tmp_path: Path, clock: list[float]
) -> None:
    """With inference on, two servers on one database: exports whose sessions the worker
    named give the same lists, details, search and inferred sessions as the same
    exports left whole to the writer (the clock stands still: the setting stays known)."""
    named_in_worker = store.create_project("worker").id
    whole = store.create_project("whole").id
    other = open_store(shared_server().url(database_name(tmp_path.name)))
    assert isinstance(other, ClickHouseStore)
    try:
        servers = [store, other]
        for server in servers:
            server.set_session_inference(named_in_worker, True)
        for turn, group in enumerate(_conversations()):
            server = servers[turn % 2]
            batches = []
            for spans, in_worker in group:
                body = request(spans).SerializeToString()
                answer = _prepared(server, named_in_worker, body)
                assert isinstance(answer.for_store, ExportRows) is in_worker
                batches.append(
                    SpanBatch(named_in_worker, answer.normalized.spans, answer.for_store)
                )
            server.write_span_batches(batches)
            records = [_prepared(None, whole, request(s).SerializeToString()) for s, _ in group]
            server.write_span_batches([SpanBatch(whole, p.normalized.spans, None) for p in records])
    finally:
        other.close()

    sessions = store.list_sessions(whole, SessionQuery()).items
    by_name = {
        s.session_id.split("-")[1] if s.session_id.startswith("inferred-") else s.session_id: s
        for s in sessions
    }
    assert sorted(by_name) == ["blue-session", "h", "r", "t"]
    assert [by_name[k].trace_count for k in ("blue-session", "h", "r", "t")] == [3, 3, 3, 3]
    assert len(store.list_traces(whole, TraceQuery()).items) == 12
    words = ("red", "blue", "thread", "respond", "question")
    _assert_reads_alike(store, named_in_worker, whole, words)
