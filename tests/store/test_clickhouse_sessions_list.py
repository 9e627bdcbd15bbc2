"""What the ClickHouse Sessions list costs as it opens: the statements a page runs and
the parts they read (docs/benchmarks.md measures them at 10M spans)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.store.clickhouse_statements import own_store, recorded_sql, recorded_with_params
from tests.store.test_contract import MS, T0, record
from threadline.server.model import SessionQuery, datetime_to_ns
from threadline.server.store.clickhouse import picked_traces, recent_sessions
from threadline.server.store.clickhouse.store import ClickHouseStore

pytestmark = pytest.mark.clickhouse

DAY_MS = 86_400_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    with own_store(tmp_path) as opened:
        yield opened


def _now_ms() -> int:
    return (time.time_ns() - T0) // MS


def test_a_short_first_page_is_one_read_of_the_activity(store: ClickHouseStore):
    # Fewer sessions than a page: the pick says itself that it read all the window
    # holds, with no second statement to count the window's parts.
    project = store.create_project("p").id
    now_ms = _now_ms()
    for trace in range(1, 4):
        store.write_spans(
            project, [record(trace, trace, start=now_ms - trace * 1000, session=f"s{trace}")]
        )
    statements = recorded_sql(store)
    page = store.list_sessions(project, SessionQuery(limit=50))
    assert [s.session_id for s in page.items] == ["s1", "s2", "s3"]
    assert page.next_cursor is None
    assert len([sql for sql in statements if "trace_activity" in sql]) == 1, statements


def test_an_empty_window_asks_once_more_whether_it_holds_parts(store: ClickHouseStore):
    # Traces without a session: the pick finds none, so whether the window holds more
    # parts than it read is asked separately (and it does not: the page is empty).
    project = store.create_project("p").id
    now_ms = _now_ms()
    store.write_spans(project, [record(1, 1, start=now_ms - 1000)])
    statements = recorded_sql(store)
    assert store.list_sessions(project, SessionQuery(limit=50)).items == []
    assert len([sql for sql in statements if "trace_activity" in sql]) == 2, statements


def test_the_latest_parts_are_found_among_the_windows_parts_only(store: ClickHouseStore):
    # A part of two months ago and one of now, in partitions of their own. With
    # force_index_by_date, ClickHouse refuses a read that cannot skip partitions by the
    # time: the latest parts' bound of a window reads only the parts that reach into
    # it, where without the window's condition it read the newest granules of every
    # part (of every month kept).
    project = store.create_project("p").id
    now_ms = _now_ms()
    store.write_spans(project, [record(1, 1, start=now_ms - 60 * DAY_MS, session="old")])
    store.write_spans(project, [record(2, 2, start=now_ms - 1000, session="new")])
    params = {
        "project": project,
        "since": time.time_ns() - 7 * DAY_MS * MS,
        "rows_back": 0,
    }
    forced = " SETTINGS force_index_by_date = 1"
    ((latest,),) = store._rows(recent_sessions.LATEST_BOUND + forced, params)
    assert latest is not None and latest >= params["since"]
    unbounded = recent_sessions.LATEST_BOUND.replace(" AND end_ns >= %(since)s", "")
    with pytest.raises(Exception, match=r"force_index_by_date|INDEX_NOT_USED"):
        store._rows(unbounded + forced, params)
    week = SessionQuery(start=datetime.now(UTC) - timedelta(days=7), limit=50)
    assert [s.session_id for s in store.list_sessions(project, week).items] == ["new"]


def test_parts_ending_with_the_latest_parts_bound_are_read_too(
    store: ClickHouseStore, monkeypatch: pytest.MonkeyPatch
):
    # Six sessions whose traces end at the same instant, and a first try that reads back
    # three parts (one per row of a page of two): the parts that end with the last one
    # read back are read too, so the page is the greatest session ids of the six, as when
    # every part is read, not whichever three of the six the engine met first (a pick
    # limited to the latest rows without their ties failed this).
    monkeypatch.setattr(recent_sessions, "LATEST_PARTS", (1, 2))
    project = store.create_project("p").id
    now_ms = _now_ms()
    for trace in range(6, 0, -1):  # the least ids written last (an engine meets them first)
        store.write_spans(project, [record(trace, trace, start=now_ms - 5000, session=f"s{trace}")])
    store.write_spans(project, [record(7, 7, start=now_ms - 9000, session="s9")])
    statements = recorded_sql(store)
    page = store.list_sessions(project, SessionQuery(limit=2))
    assert [s.session_id for s in page.items] == ["s6", "s5"]
    assert len([sql for sql in statements if "trace_activity" in sql]) == 1, statements
    rest = store.list_sessions(project, SessionQuery(limit=5, cursor=page.next_cursor)).items
    assert [s.session_id for s in rest] == ["s4", "s3", "s2", "s1", "s9"]


def test_a_sessions_page_reads_its_scores_beside_the_merge(store: ClickHouseStore):
    # The page's score summaries need only its session ids, so they are read while its
    # traces are merged: the merge here waits (a while at most) for the scores' read to
    # begin, which it never does if the two run one after the other.
    project = store.create_project("p").id
    now_ms = _now_ms()
    store.write_spans(project, [record(1, 1, start=now_ms - 1000, session="s")])
    scores_began = threading.Event()
    overlapped: list[bool] = []
    rows = store._rows

    def watching(sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        if "target_kind" in sql:
            scores_began.set()
        elif "trace_parts_packed" in sql:
            overlapped.append(scores_began.wait(timeout=10))
        return rows(sql, params)

    store._rows = watching  # type: ignore[method-assign]
    store._scores._rows = watching  # the scores' reads go through the rows given them
    page = store.list_sessions(project, SessionQuery(limit=50))
    assert [s.session_id for s in page.items] == ["s"]
    assert overlapped == [True]


def test_a_picked_page_reads_its_traces_by_the_ids_it_was_picked_by(store: ClickHouseStore):
    # The pick has read the page's recent trace parts: the page's traces are read by
    # those ids, in one statement (their parts, their context use and whether the
    # sessions have other traces, side by side), with no read of the sessions' members
    # before it.
    project = store.create_project("p").id
    now_ms = _now_ms()
    for trace in range(1, 4):
        store.write_spans(
            project,
            [record(trace, trace, start=now_ms - trace * 1000, session=f"s{trace}", tokens=(3, 4))],
        )
    statements = recorded_with_params(store)
    page = store.list_sessions(project, SessionQuery(limit=50))
    assert [(s.session_id, s.trace_count, s.total_tokens) for s in page.items] == [
        ("s1", 1, 7),
        ("s2", 1, 7),
        ("s3", 1, 7),
    ]
    reads = [(sql, params) for sql, params in statements if "trace_parts_packed" in sql]
    assert len(reads) == 1, statements
    sql, params = reads[0]
    assert params.get("seen") == [f"{trace:032x}" for trace in range(1, 4)]
    # The context use comes with the packed parts, not from a second lookup by id.
    assert "trace_context" not in sql and "session_members" in sql
    assert "groupUniqArray(trace_id) FROM session_members" not in sql  # no scalar first


def test_a_trace_the_pick_did_not_see_is_still_in_its_session(store: ClickHouseStore):
    # Session "long" had a turn two hours ago, then 40 other sessions were active, then
    # "long" again. A page of one reads back the latest 32 parts only: the old turn is
    # not among them, so it is found among the session's members and read by its id
    # in a statement of its own, and the session's totals are whole.
    project = store.create_project("p").id
    now_ms = _now_ms()
    long_turns = [record(1, 1, start=now_ms - 7_200_000, session="long", tokens=(10, 1))]
    store.write_spans(project, long_turns)
    for other in range(2, 42):
        start = now_ms - 3_600_000 + other * 1000
        store.write_spans(project, [record(other, other, start=start, session=f"o{other}")])
    store.write_spans(project, [record(99, 99, start=now_ms - 1000, session="long", tokens=(5, 2))])
    statements = recorded_with_params(store)
    page = store.list_sessions(project, SessionQuery(limit=1))
    (session,) = page.items
    assert (session.session_id, session.trace_count, session.total_tokens) == ("long", 2, 18)
    assert page.next_cursor is not None
    reads = [params for sql, params in statements if "trace_parts_packed" in sql]
    # (The pick reads one session more than the page shows, to tell whether a next page
    # follows: "o41", with its one trace.)
    seen = [f"{41:032x}", f"{99:032x}"]
    assert [params.get("seen") for params in reads] == [seen, None], statements
    assert reads[1]["ids"] == [f"{1:032x}"]


def test_a_page_of_too_many_traces_to_name_reads_them_by_session(
    store: ClickHouseStore, monkeypatch: pytest.MonkeyPatch
):
    # Past picked_traces.MAX_SEEN trace ids (1 here, 1,000 in use), binding them into
    # the statement's text would outgrow it: the page's traces are found by session.
    monkeypatch.setattr(picked_traces, "MAX_SEEN", 1)
    project = store.create_project("p").id
    now_ms = _now_ms()
    for trace in range(1, 3):
        store.write_spans(
            project, [record(trace, trace, start=now_ms - trace * 1000, session="s", tokens=(1, 1))]
        )
    statements = recorded_with_params(store)
    (session,) = store.list_sessions(project, SessionQuery(limit=50)).items
    assert (session.session_id, session.trace_count, session.total_tokens) == ("s", 2, 4)
    reads = [params for sql, params in statements if "trace_parts_packed" in sql]
    assert len(reads) == 1 and "seen" not in reads[0] and reads[0]["sessions"] == ["s"]


def test_a_page_reads_its_traces_from_the_month_of_their_root_on(store: ClickHouseStore):
    # A trace whose root span began two months ago and ends now, and whose child was
    # exported on its own long ago: the page reads the trace's packed parts from its
    # root's month on (less the slack), which holds both parts, not from the window's
    # or the latest activity's month.
    project = store.create_project("p").id
    now_ms = _now_ms()
    root_start = now_ms - 60 * DAY_MS
    store.write_spans(project, [record(1, 2, 1, start=now_ms - 59 * DAY_MS, length=1000)])
    store.write_spans(
        project, [record(1, 1, start=root_start, length=60 * DAY_MS - 1000, session="s")]
    )
    store.write_spans(project, [record(2, 3, start=now_ms - 2000, session="t")])
    statements = recorded_with_params(store)
    page = store.list_sessions(project, SessionQuery(limit=50))
    assert [(s.session_id, s.trace_count, s.span_count) for s in page.items] == [
        ("s", 1, 2),
        ("t", 1, 1),
    ]
    (params,) = [params for sql, params in statements if "trace_parts_packed" in sql]
    assert params["seen"] == [f"{1:032x}", f"{2:032x}"]
    assert params["since"] == T0 + root_start * MS - picked_traces.ROOT_SLACK_NS


def test_a_trace_whose_root_the_pick_did_not_read_is_read_in_every_month(
    store: ClickHouseStore, monkeypatch: pytest.MonkeyPatch
):
    # Trace 1's root span ran two months ago; a span under it ended just now. The pick
    # reads back only the latest parts: the late span's, not the root's. The trace is
    # not read from the late span's month on (its root would be missed), but in every
    # month, in a branch of the page's one statement of its own.
    monkeypatch.setattr(recent_sessions, "LATEST_PARTS", (1, 2))
    project = store.create_project("p").id
    now_ms = _now_ms()
    root_start = now_ms - 60 * DAY_MS
    store.write_spans(project, [record(1, 1, start=root_start, length=1000, session="s")])
    for trace in range(2, 6):
        store.write_spans(project, [record(trace, trace, start=now_ms - 9000, session=f"o{trace}")])
    store.write_spans(project, [record(1, 9, 1, start=now_ms - 2000, length=1000, session="s")])
    statements = recorded_with_params(store)
    page = store.list_sessions(project, SessionQuery(limit=1))
    (session,) = page.items
    assert (session.session_id, session.trace_count, session.span_count) == ("s", 1, 2)
    assert datetime_to_ns(session.start_time) == T0 + root_start * MS
    (read,) = [params for sql, params in statements if "trace_parts_packed" in sql]
    assert read["unrooted"] == [f"{1:032x}"] and f"{1:032x}" not in read["rooted"]
