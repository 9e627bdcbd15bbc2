"""What a Sessions page, a session's page, a trace's page and a Traces page show, on every
backend, when a session's traces arrive as they do from several servers: split over
exports in any order, some delivered twice, a late part that changes the root, and two
stores (two servers) writing one session. (On ClickHouse the pages read each trace's
packed parts, one string per export, merged by the reader: migration 0016.)"""

from __future__ import annotations

from pathlib import Path

from tests.store import test_contract
from tests.store.test_contract import _open, record
from threadline.server.model import SessionQuery, SpanRecord, TraceQuery
from threadline.server.store import Store

backend = test_contract.backend
store = test_contract.store


def _exports() -> list[list[SpanRecord]]:
    """Three turns of session "s" (and one of "other"), each split over exports."""
    turn1 = [
        record(1, 1, start=0, length=100, session="s", user="u", input='"q1"', output='"a1"'),
        record(1, 2, 1, start=10, length=20, tokens=(100, 10), cost=0.25, error=True),
        record(1, 3, 1, start=40, length=20, tokens=(7, 3), cost=0.5, tags=["x"]),
    ]
    # Turn 2: its child (naming another session) arrives first; the root, which names
    # "s", arrives last and decides.
    turn2 = [
        record(2, 5, 4, start=1010, length=10, session="other", tokens=(5, 5), metadata={"k": 1}),
        record(2, 4, start=1000, length=60, session="s", user="v", output='"a2"'),
    ]
    turn3 = [record(3, 6, start=2000, length=30, input='"q3"', session="s")]
    elsewhere = [record(4, 7, start=500, length=10, session="other")]
    return [
        [turn1[1]],
        [turn2[0]],
        [turn1[0], turn1[2]],
        [turn3[0], elsewhere[0]],
        [turn1[1], turn1[2]],  # delivered again
        [turn2[1]],
        [turn2[1]],  # and again
    ]


def _check(store: Store, project: int) -> None:
    listed = store.list_sessions(project, SessionQuery(limit=10)).items
    assert [s.session_id for s in listed] == ["s", "other"]
    for shown in (listed[0], store.get_session(project, "s")):
        assert shown is not None
        assert (shown.trace_count, shown.span_count, shown.error_count) == (3, 6, 1)
        assert (shown.input_tokens, shown.output_tokens, shown.total_tokens) == (112, 18, 130)
        assert shown.cost_usd == 0.75
        assert shown.user_ids == ["u", "v"]
        assert (shown.first_input, shown.last_output) == ('"q1"', '"a2"')
        assert shown.duration_ms == 2030
    other = listed[1]
    assert (other.trace_count, other.span_count) == (1, 1)
    detail = store.get_session(project, "s")
    assert detail is not None
    assert [t.span_count for t in detail.traces] == [3, 2, 1]
    first = store.get_trace(project, f"{1:032x}")
    assert first is not None
    assert (first.span_count, first.error_count, first.total_tokens) == (3, 1, 120)
    assert first.tags == ["x"] and first.input_preview == '"q1"'
    second = store.get_trace(project, f"{2:032x}")
    assert second is not None
    assert (second.session_id, second.user_id, second.name) == ("s", "v", "span-4")
    assert second.metadata == {"k": 1} and second.output_preview == '"a2"'
    traces = store.list_traces(project, TraceQuery(limit=10)).items
    assert [(t.trace_id[-1], t.span_count) for t in traces] == [
        ("3", 1),
        ("2", 2),
        ("4", 1),
        ("1", 3),
    ]


def test_pages_count_every_part_once_in_any_order(store: Store):
    project = store.create_project("p").id
    for export in _exports():
        store.write_spans(project, export)
    _check(store, project)


def test_pages_are_exact_when_two_servers_write_one_session(
    store: Store, backend: str, tmp_path: Path
):
    project = store.create_project("p").id
    second = _open(backend, tmp_path)  # another server on the same database
    try:
        for number, export in enumerate(_exports()):
            (store if number % 2 else second).write_spans(project, export)
        _check(store, project)
        _check(second, project)
    finally:
        second.close()
