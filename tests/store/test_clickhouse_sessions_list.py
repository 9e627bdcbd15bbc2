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

from tests.store.clickhouse_statements import own_store, recorded_sql
from tests.store.test_contract import MS, T0, record
from threadline.server.model import SessionQuery
from threadline.server.store.clickhouse import recent_sessions
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
