"""The ClickHouse pages and details read their traces from the packed parts (migration
0016): one string per part in one column, not the forty-odd column streams of
``trace_parts_by_id``, whose granules cost a page most of its time at scale
(docs/benchmarks.md). Their merge is exact in any order and for parts sent twice."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.store.clickhouse_statements import own_store, recorded_sql
from tests.store.test_contract import MS, T0, record
from threadline.server.model import SessionQuery, TraceQuery
from threadline.server.store.clickhouse import merged_traces, packed_parts, recent_sessions
from threadline.server.store.clickhouse.store import ClickHouseStore

pytestmark = pytest.mark.clickhouse


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    with own_store(tmp_path) as opened:
        yield opened


def test_pages_and_details_read_the_packed_parts_only(store: ClickHouseStore):
    project = store.create_project("p").id
    store.write_spans(project, [record(1, 1, session="s", tokens=(1, 2)), record(2, 2, start=5)])
    store.write_spans(project, [record(1, 3, 1, start=1, tags=["t"])])
    statements = recorded_sql(store)
    sessions = store.list_sessions(project, SessionQuery(limit=10)).items
    session = store.get_session(project, "s")
    trace = store.get_trace(project, f"{1:032x}")
    assert [s.span_count for s in sessions] == [2]
    assert session is not None and session.total_tokens == 3
    assert trace is not None and trace.tags == ["t"] and trace.span_count == 2
    assert not [sql for sql in statements if "trace_parts_by_id" in sql], statements
    assert len([sql for sql in statements if "trace_parts_packed" in sql]) == 3
    # A Traces page (here picked by the filters' path) reads its page's rows packed too.
    statements.clear()
    traces = store.list_traces(project, TraceQuery(limit=10)).items
    assert [t.span_count for t in traces] == [1, 2]
    assert len([sql for sql in statements if "trace_parts_packed" in sql]) == 1


def test_merged_parts_are_the_same_in_any_order_and_sent_twice(store: ClickHouseStore):
    project = store.create_project("p").id
    exports = [
        [record(1, 2, 1, start=10, tokens=(3, 4), cost=0.5, metadata={"k": 1})],
        [record(1, 1, start=0, length=50, session="s", input='"q"', tags=["a"])],
        [record(1, 3, 1, start=20, output='"out"', error=True, metadata={"k": 2})],
    ]
    for export in [*exports, exports[0]]:
        store.write_spans(project, export)
    ((rollups, labels),) = store._rows(
        "SELECT groupUniqArrayArray(rollup), groupUniqArrayArray(labels)"
        " FROM trace_parts_packed WHERE trace_id = %(t)s",
        {"t": f"{1:032x}"},
    )
    assert len(rollups) == 4  # the export sent again is a part of its own (written later)
    merged = packed_parts.merged(rollups, labels)
    for order in itertools.permutations(range(len(rollups))):
        assert _unordered(packed_parts.merged([rollups[i] for i in order], labels)) == (
            _unordered(merged)
        )
    assert merged[:4] == (record(1, 1).start_ns, record(1, 1, length=50).end_ns, 3, 1)
    root, first_session = merged[4], merged[5]
    assert root[0] == 0 and root[3:5] == ("span-1", "s") and first_session[3] == "s"
    # The same as ClickHouse's own merge of the wide parts, after merges have run.
    store._ch.command("OPTIMIZE TABLE trace_parts_packed FINAL")
    ((rows,),) = store._rows("SELECT count() FROM trace_parts_packed")
    assert rows == 1
    wide = store._rows(
        "SELECT min(start_ns), max(end_ns), length(groupUniqArrayArray(span_ids)),"
        " length(groupUniqArrayArray(error_span_ids)), min(root), min(first_session),"
        " min(first_user), min(first_input), min(last_output)"
        " FROM trace_parts_by_id GROUP BY trace_id"
    )[0]
    assert merged[:9] == tuple(wide)


def _unordered(merged: tuple[Any, ...]) -> tuple[Any, ...]:
    """A merged row with its amounts, tag and metadata entries as sets: they come in no
    particular order (two copies of one span's amounts, written at different times, can
    come in either), and their readers sort them."""
    return (*merged[:9], *(frozenset(listed) for listed in merged[9:]))


def test_the_least_pick_puts_a_missing_value_last():
    def part(preview: str | None) -> str:
        root = [0, 1, "span", "name", None, None, preview, 1, None, 0]
        lacking = [1, 1, "span", ""]
        no_output = [1, -2, 1, "span", None]
        return json.dumps([1, 2, ["span"], [], root, lacking, lacking, lacking, no_output, []])

    merged = packed_parts.merged([part(None), part('"x"')], [])
    assert merged[4][6] == '"x"'
    assert merged[2] == 1  # one span, however many parts name it


def test_the_first_sessions_page_reads_back_past_sessions_of_many_turns(
    store: ClickHouseStore, monkeypatch: pytest.MonkeyPatch
):
    # Read back from the latest parts, one part per row of the page, then two: sessions
    # of four turns fill neither, and the page comes from reading back by time.
    monkeypatch.setattr(recent_sessions, "LATEST_PARTS", (1, 2))
    project = store.create_project("p").id
    now_ms = (time.time_ns() - T0) // MS
    trace = 0
    for turn in range(4):
        for session in range(5):
            trace += 1
            start = now_ms - 60_000 * (20 - 4 * session - turn)  # one session after another
            store.write_spans(project, [record(trace, trace, start=start, session=f"s{session}")])
    statements = recorded_sql(store)
    page = store.list_sessions(project, SessionQuery(limit=3))
    assert [(s.session_id, s.trace_count) for s in page.items] == [
        ("s4", 4),
        ("s3", 4),
        ("s2", 4),
    ]
    picks = [sql for sql in statements if "FROM trace_activity" in sql]
    # Two short reads from the latest parts (each saying the window holds more), then
    # by time.
    assert [" OFFSET " in sql for sql in picks] == [True, True, False], statements
    rest = store.list_sessions(project, SessionQuery(limit=3, cursor=page.next_cursor)).items
    assert [s.session_id for s in rest] == ["s1", "s0"]


def _quoted_integers(value: Any) -> Any:
    """``value`` with every integer written as a string, as ClickHouse writes 64-bit ones
    under ``output_format_json_quote_64bit_integers = 1``."""
    if isinstance(value, list):
        return [_quoted_integers(item) for item in value]
    return str(value) if isinstance(value, int) else value


def test_integers_written_as_strings_merge_as_numbers():
    def part(start: int, span: str, tokens: int) -> str:
        root = [1, start, span, "name", None, None, None, 0, None, 0]
        first = [0, start, span, "s"]
        last = [0, -(start + 5), start, span, '"out"']
        amounts = [[span, 7, tokens, 0, tokens, 0.5]]
        return json.dumps([start, start + 5, [span], [], root, first, first, first, last, amounts])

    # Text order differs from number order: "9" > "10", and "-15" < "-9" as text too.
    rollups = [part(9, "a", 1), part(10, "b", 2)]
    labels = [json.dumps([[[9, "a", 1, "t"]], [[10, "b", "k", "1", "1"]]])]
    quoted_rollups = [json.dumps(_quoted_integers(json.loads(r))) for r in rollups]
    quoted_labels = [json.dumps(_quoted_integers(json.loads(label))) for label in labels]
    merged = packed_parts.merged(rollups, labels)
    assert packed_parts.merged(quoted_rollups, quoted_labels) == merged
    assert merged[:4] == (9, 15, 2, 0) and merged[4][1] == 9 and merged[8][1] == -15


def test_a_span_sent_twice_changed_shows_one_value_on_every_path(store: ClickHouseStore):
    """Two copies of one span (same start, same id) set a key to different values: the
    page (packed parts, merged in Python) and the filters (merged in SQL) both show the
    greater JSON text, whichever copy came first and in whatever order the parts unite."""
    project = store.create_project("p").id
    for trace, values in ((1, ("a", "b")), (2, ("b", "a"))):
        for value in values:
            store.write_spans(project, [record(trace, 1, metadata={"k": value, "n": trace})])
    for trace in (f"{1:032x}", f"{2:032x}"):
        detail = store.get_trace(project, trace)
        assert detail is not None and detail.metadata["k"] == "b"
    listed = store.list_traces(project, TraceQuery(limit=10)).items
    assert [t.metadata["k"] for t in listed] == ["b", "b"]
    for value, found in (("b", 2), ("a", 0)):
        filtered = store.list_traces(project, TraceQuery(limit=10, metadata={"k": value}))
        assert len(filtered.items) == found


def test_the_metadata_pick_does_not_depend_on_the_entries_order():
    same_span = [
        (5, "span", "k", '"a"', "a"),
        (5, "span", "k", '"b"', "b"),
        (3, "earlier", "k", '"z"', "z"),
        (5, "span", "other", "1", "1"),
    ]
    for order in itertools.permutations(same_span):
        assert merged_traces._metadata(order) == {"k": "b", "other": 1}
