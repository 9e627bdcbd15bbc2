"""Batches written together (``Store.write_span_batches``, the writer's group commit)
leave every backend exactly as the same batches written one at a time: a trace whose
spans are split between batches, a span sent twice, a session grown by several of them,
batches of two projects, an empty batch."""

from __future__ import annotations

import pytest

from tests.store import test_contract as contract
from threadline.server.model import (
    METRIC_NAMES,
    MetricsQuery,
    SessionQuery,
    SpanRecord,
    TraceQuery,
    UserQuery,
    ns_to_datetime,
)
from threadline.server.store import Store
from threadline.server.store.base import PreparedForAnother, SpanBatch
from threadline.server.store.clickhouse import ClickHouseStore

backend = contract.backend
store = contract.store
record = contract.record


def _batches() -> list[tuple[str, list[SpanRecord]]]:
    """(project, spans) in the order an exporter sent them."""
    return [
        (
            "a",
            [
                contract.record(1, 1, start=0, length=100, session="s", user="u", input='"q1"'),
                contract.record(1, 2, 1, start=5, tokens=(10, 2), cost=0.25, model="gpt-4o"),
                contract.record(2, 3, start=200, session="s", output='"a2"'),
            ],
        ),
        ("b", [contract.record(7, 70, start=0, session="s", user="w", error=True)]),
        (
            "a",
            [
                # The rest of trace 1, and a copy of its span 1 (the first copy is kept).
                contract.record(1, 4, 1, start=50, length=80, error=True, output='"a1"'),
                contract.record(1, 1, start=0, length=999, session="s", user="u", input='"x"'),
                contract.record(3, 5, start=400, session="s", tokens=(1, 1), model="gpt-4o"),
                contract.record(4, 6, start=3_600_000, session="t", user="v", cost=1.0),
            ],
        ),
        ("a", []),
        ("a", [contract.record(5, 7, start=7_200_000, session="s", user="u")]),
    ]


def _everything(store: Store, project: int) -> dict[str, object]:
    """What the lists, detail pages and the dashboard show of a project."""
    query = MetricsQuery(
        start=ns_to_datetime(contract.T0 - 3_600 * 10**9),
        end=ns_to_datetime(contract.T0 + 4 * 3_600 * 10**9),
        bucket="hour",
    )
    sessions = store.list_sessions(project, SessionQuery()).items
    traces = store.list_traces(project, TraceQuery()).items
    return {
        "sessions": sessions,
        "traces": traces,
        "users": store.list_users(project, UserQuery()).items,
        "session pages": [store.get_session(project, s.session_id) for s in sessions],
        "trace pages": [store.get_trace(project, t.trace_id) for t in traces],
        "metrics": store.metrics(project, query, list(METRIC_NAMES)),
    }


def test_batches_written_together_equal_batches_written_in_turn(store: Store):
    together = {name: store.create_project(f"together-{name}").id for name in "ab"}
    in_turn = {name: store.create_project(f"in-turn-{name}").id for name in "ab"}
    batches = _batches()
    store.write_span_batches([SpanBatch(together[name], spans) for name, spans in batches])
    for name, spans in batches:
        store.write_spans(in_turn[name], spans)

    for name in "ab":
        got, expected = _everything(store, together[name]), _everything(store, in_turn[name])
        assert got == expected, name
    trace = store.get_trace(together["a"], f"{1:032x}")
    assert trace is not None and trace.span_count == 3
    if not isinstance(store, ClickHouseStore):
        # SQLite keeps the first copy of a span (ClickHouse's rollups take the later
        # copy's end either way).
        assert trace.duration_ms == 130
    session = store.get_session(together["a"], "s")
    assert session is not None and session.trace_count == 4 and session.span_count == 6


def test_preparation_made_for_another_project_is_refused(store: Store):
    """A batch prepared by the store's preparer (as a worker process does) for another
    project is refused, not written into the wrong project nor prepared again: records
    sent with a preparation come without what it holds (their texts)."""
    first, second = store.create_project("first").id, store.create_project("second").id
    preparer = store.span_preparer()
    assert preparer is not None
    spans = [contract.record(9, 90, session="z", user="u")]
    prepared = preparer(first, spans)
    with pytest.raises(PreparedForAnother, match=f"for project {first}, not {second}"):
        store.write_span_batches([SpanBatch(second, spans, prepared)])
    assert store.get_trace(second, f"{9:032x}") is None
    assert store.get_trace(first, f"{9:032x}") is None
