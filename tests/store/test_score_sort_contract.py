"""The Sessions and Traces lists sorted by a score, on every backend: the same order on
the same data (ties by id, rows without the score last, newest first), walked page by
page through every page size, with the other filters."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.store import test_contract
from tests.store.clickhouse_statements import own_store, recorded_sql
from tests.store.test_contract import MS, T0, record, score
from threadline.server.errors import BadRequest
from threadline.server.model import (
    NumericFilter,
    Page,
    ScoreFilter,
    ScoreSort,
    SessionQuery,
    TraceQuery,
    ns_to_datetime,
)
from threadline.server.store import Store
from threadline.server.store.clickhouse import score_sorted as clickhouse_sorted
from threadline.server.store.sqlite import score_sorted as sqlite_sorted

backend = test_contract.backend
store = test_contract.store


def _every_page(
    read: Callable[[int, str | None], Page[Any]], key: Callable[[Any], Any], limits: tuple[int, ...]
) -> list[Any]:
    """The ``key`` of each of the list's rows, walked page by page at each page size
    (``read(limit, cursor)``); all sizes must agree."""
    walks = []
    for limit in limits:
        seen: list[Any] = []
        cursor = None
        while True:
            page = read(limit, cursor)
            seen += [key(item) for item in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        walks.append(seen)
    assert all(walk == walks[0] for walk in walks), walks
    return walks[0]


def _sessions(store: Store, project: int, sort: ScoreSort, **query) -> list[str]:
    return _every_page(
        lambda limit, cursor: store.list_sessions(
            project, SessionQuery(limit=limit, cursor=cursor, score_sort=sort, **query)
        ),
        lambda s: s.session_id,
        (1, 2, 3, 50),
    )


def _traces(store: Store, project: int, sort: ScoreSort, **query) -> list[int]:
    return _every_page(
        lambda limit, cursor: store.list_traces(
            project, TraceQuery(limit=limit, cursor=cursor, score_sort=sort, **query)
        ),
        lambda t: int(t.trace_id, 16),
        (1, 2, 50),
    )


def _write(store: Store) -> int:
    project = store.create_project("p").id
    # Sessions s1..s7, one trace each (trace i), s7 latest; s2 and s4 failed.
    store.write_spans(
        project,
        [
            record(i, i, start=i * 100, session=f"s{i}", user="u", error=i in (2, 4))
            for i in range(1, 8)
        ],
    )
    store.write_scores(
        project,
        [
            score("1q", "quality", 0.5, session="s1"),
            score("2q", "quality", 1.0, session="s2"),
            score("2r", "quality", 0.8, session="s2"),  # average 0.9
            score("3q", "quality", 0.5, session="s3"),  # ties with s1
            score("4q", "quality", 0.125, session="s4"),
            # A label of that name: no average, so s6 sorts with the unscored.
            score("6q", "quality", "n/a", session="s6"),
            score("1c", "topic", "billing", session="s1"),
            score("2c", "topic", "refund", session="s2"),
            score("3c", "topic", "billing", session="s3"),
            score("5c", "topic", "account", session="s5"),
            # On traces: the Traces list's, not their sessions'.
            score("t1", "quality", 0.25, trace=1, session="s1"),
            score("t2", "quality", 0.75, trace=2, span=2, session="s2"),
            score("t3", "quality", 0.25, trace=3, session="s3"),
        ],
        # "quality" holds a label beside its numbers, as a store written before a name
        # kept one type can: the sorts still order such a name.
        check_types=False,
    )
    return project


def test_sessions_sorted_by_a_score(store: Store):
    project = _write(store)
    by_quality = ScoreSort(name="quality")
    rising = ScoreSort(name="quality", descending=False)
    assert _sessions(store, project, by_quality) == ["s2", "s3", "s1", "s4", "s7", "s6", "s5"]
    assert _sessions(store, project, rising) == ["s4", "s1", "s3", "s2", "s7", "s6", "s5"]
    by_topic = ScoreSort(name="topic", by="label")
    assert _sessions(store, project, by_topic) == ["s2", "s3", "s1", "s5", "s7", "s6", "s4"]
    assert _sessions(store, project, by_topic.model_copy(update={"descending": False})) == [
        "s5",
        "s1",
        "s3",
        "s2",
        "s7",
        "s6",
        "s4",
    ]
    # A name nobody used: every session, newest first.
    assert _sessions(store, project, ScoreSort(name="nothing")) == [
        f"s{i}" for i in (7, 6, 5, 4, 3, 2, 1)
    ]


def test_score_sort_combines_with_filters(store: Store):
    project = _write(store)
    by_quality = ScoreSort(name="quality")
    assert _sessions(store, project, by_quality, status="error") == ["s2", "s4"]
    assert _sessions(store, project, by_quality, status="ok") == ["s3", "s1", "s7", "s6", "s5"]
    # Active from s4's start on (each trace lasts 10 ms).
    after = ns_to_datetime(record(4, 4, start=400).start_ns)
    assert _sessions(store, project, by_quality, start=after) == ["s4", "s7", "s6", "s5"]
    assert _sessions(store, project, by_quality, user_id="u", q="s2") == ["s2"]
    quality_from_half = ScoreFilter(name="quality", op=">=", value=0.5)
    assert _sessions(
        store, project, ScoreSort(name="quality", descending=False), scores=[quality_from_half]
    ) == ["s1", "s3", "s2"]
    no_topic = ScoreFilter(name="topic", missing=True)
    assert _sessions(store, project, by_quality, scores=[no_topic]) == ["s4", "s7", "s6"]


def _write_windowed(store: Store) -> int:
    """Sessions s1..s8, one trace each (trace i at i*100 ms), users u1 (odd) and u2
    (even), tag ``beta`` on s3, s6 and s7, s4 and s7 failed; s9 runs from 50 to 860 ms,
    its first trace by user u3 with tag ``gamma``, its last by nobody."""
    project = store.create_project("windowed").id
    spans = [
        record(
            i,
            i,
            start=i * 100,
            session=f"s{i}",
            user="u1" if i % 2 else "u2",
            error=i in (4, 7),
            cost=i / 1000,
            tags=["beta"] if i in (3, 6, 7) else [],
        )
        for i in range(1, 9)
    ]
    spans += [
        record(9, 9, start=50, session="s9", user="u3", tags=["gamma"]),
        record(10, 10, start=850, session="s9"),
    ]
    store.write_spans(project, spans)
    store.write_scores(
        project,
        [
            score(f"q{session}", "quality", value, session=session)
            for session, value in (
                ("s1", 0.5),
                ("s2", 0.9),
                ("s3", 0.5),
                ("s5", 0.2),
                ("s6", 0.7),
                ("s8", 0.7),
                ("s9", 0.6),
            )
        ],
    )
    return project


@pytest.mark.parametrize("stretches", [1, 100])
def test_a_filtered_sort_in_a_window_reads_the_same_pages(
    store: Store, monkeypatch: pytest.MonkeyPatch, stretches: int
):
    """A score sort with a window and the user, tag, status and numeric filters: the
    window's rows the filters keep, by value, then those without one, newest first,
    through every page size; a session's trace that names the user or carries the tag
    counts even when it ran outside the window (s9's). With stretches of one row (most
    pages read from the window's rows) and long ones alike."""
    monkeypatch.setattr(clickhouse_sorted, "STRETCH_PER_ROW", 1)
    monkeypatch.setattr(clickhouse_sorted, "STRETCHES", stretches)
    monkeypatch.setattr(clickhouse_sorted, "MIN_STRETCH", 1)
    monkeypatch.setattr(clickhouse_sorted, "MAX_STRETCH", 2)
    monkeypatch.setattr(sqlite_sorted, "WALKED", stretches)
    project = _write_windowed(store)
    quality = ScoreSort(name="quality")
    window = ns_to_datetime(record(4, 4, start=400).start_ns)
    assert _sessions(store, project, quality, start=window) == ["s8", "s6", "s9", "s5", "s7", "s4"]
    assert _sessions(store, project, quality, start=window, user_id="u2") == ["s8", "s6", "s4"]
    assert _sessions(store, project, quality, start=window, user_id="u3") == ["s9"]
    assert _sessions(store, project, quality, start=window, tag="beta") == ["s6", "s7"]
    assert _sessions(store, project, quality, start=window, tag="gamma") == ["s9"]
    assert _sessions(store, project, quality, start=window, status="error") == ["s7", "s4"]
    ascending = ScoreSort(name="quality", descending=False)
    assert _sessions(store, project, ascending, start=window, user_id="u1") == ["s5", "s7"]
    costly = NumericFilter(field="cost", op=">=", value=0.0055)
    assert _sessions(store, project, quality, start=window, numbers=[costly]) == [
        "s8",
        "s6",
        "s7",
    ]
    # Without a window the same filters hold over all time.
    assert _sessions(store, project, quality, user_id="u1") == ["s3", "s1", "s5", "s7"]
    assert _sessions(store, project, quality, tag="beta") == ["s6", "s3", "s7"]


@pytest.mark.parametrize("stretches", [1, 2, 100])
def test_short_stretches_of_candidates_give_the_same_pages(
    store: Store, monkeypatch: pytest.MonkeyPatch, stretches: int
):
    """ClickHouse takes the scored rows a stretch at a time, and after ``STRETCHES`` of
    them reads the rest of the page from the window's rows (SQLite after ``WALKED``
    values): stretches as short as a page's rows, most of them filtered out, walk to
    the same pages whichever way the page ends up read."""
    monkeypatch.setattr(clickhouse_sorted, "STRETCH_PER_ROW", 1)
    monkeypatch.setattr(clickhouse_sorted, "STRETCHES", stretches)
    monkeypatch.setattr(clickhouse_sorted, "MIN_STRETCH", 1)
    monkeypatch.setattr(clickhouse_sorted, "MAX_STRETCH", 2)
    monkeypatch.setattr(sqlite_sorted, "WALKED", stretches)
    test_score_sort_combines_with_filters(store)
    project = store.list_projects()[0].id
    # Unfiltered, ClickHouse walks the rows without a value along the list's own pick
    # of the newest sessions, a stretch at a time, then reads the rest at once.
    assert _sessions(store, project, ScoreSort(name="quality")) == [
        "s2",
        "s3",
        "s1",
        "s4",
        "s7",
        "s6",
        "s5",
    ]
    assert _sessions(store, project, ScoreSort(name="topic", by="label")) == [
        "s2",
        "s3",
        "s1",
        "s5",
        "s7",
        "s6",
        "s4",
    ]
    assert _sessions(store, project, ScoreSort(name="topic", by="label"), status="ok") == [
        "s3",
        "s1",
        "s5",
        "s7",
        "s6",
    ]
    assert _traces(store, project, ScoreSort(name="quality"), status="ok") == [3, 1, 7, 6, 5]
    assert _traces(store, project, ScoreSort(name="quality")) == [2, 3, 1, 7, 6, 5, 4]


@pytest.mark.parametrize("stretches", [1, 100])
def test_a_replaced_or_deleted_score_moves_its_row(
    store: Store, monkeypatch: pytest.MonkeyPatch, stretches: int
):
    """A row sorts by its score's current value only: replaced (even back to an earlier
    value), it moves; deleted, it joins the rows without one. (ClickHouse keeps the old
    values in its by-value tables and must skip them.)"""
    monkeypatch.setattr(clickhouse_sorted, "STRETCH_PER_ROW", 1)
    monkeypatch.setattr(clickhouse_sorted, "STRETCHES", stretches)
    monkeypatch.setattr(clickhouse_sorted, "MIN_STRETCH", 1)
    monkeypatch.setattr(clickhouse_sorted, "MAX_STRETCH", 2)
    monkeypatch.setattr(sqlite_sorted, "WALKED", stretches)
    project = _write(store)
    by_quality = ScoreSort(name="quality")
    by_topic = ScoreSort(name="topic", by="label")
    store.write_scores(
        project,
        [
            score("4q", "quality", 0.95, session="s4", at=1),  # s4 to the top
            score("1q", "quality", 0.0, session="s1", at=1),
            score("3c", "topic", "zebra", session="s3", at=1),
        ],
        check_types=False,  # "quality" holds two types (``_write``)
    )
    back = [score("1q", "quality", 0.5, session="s1", at=2)]
    store.write_scores(project, back, check_types=False)
    assert store.delete_score(project, "5c")
    assert store.delete_score(project, "2q") and store.delete_score(project, "2r")
    expected = ["s4", "s3", "s1", "s7", "s6", "s5", "s2"]
    assert _sessions(store, project, by_quality) == expected
    assert _sessions(store, project, by_quality, status="error") == ["s4", "s2"]
    rising = ScoreSort(name="quality", descending=False)
    assert _sessions(store, project, rising) == ["s1", "s3", "s4", "s7", "s6", "s5", "s2"]
    assert _sessions(store, project, by_topic) == ["s3", "s2", "s1", "s7", "s6", "s5", "s4"]


def test_a_deleted_session_leaves_the_sort_and_its_values(backend, store: Store):
    """A deleted session, and a session emptied by deleting its trace, leave the sorted
    lists, and (ClickHouse) the tables that keep every value a target had for the
    sorts keep none of theirs."""
    project = _write(store)
    assert store.delete_sessions(project, ["s2"]) == 1
    assert store.delete_traces(project, [f"{3:032x}"]) == 1
    by_quality = ScoreSort(name="quality")
    assert _sessions(store, project, by_quality) == ["s1", "s4", "s7", "s6", "s5"]
    assert _traces(store, project, by_quality) == [1, 7, 6, 5, 4]
    assert _sessions(store, project, ScoreSort(name="topic", by="label")) == [
        "s1",
        "s5",
        "s7",
        "s6",
        "s4",
    ]
    if backend != "sqlite":
        for table in ("score_rollups_by_average", "score_rollups_by_label"):
            left = store._rows(  # type: ignore[attr-defined]
                f"SELECT target_kind, target_id FROM {table} WHERE project_id = %(p)s"
                " AND target_id IN %(ids)s ORDER BY target_kind, target_id",
                {"p": project, "ids": ["s2", "s3", f"{2:032x}", f"{3:032x}"]},
            )
            assert left == [], (table, left)
        # s6's quality is a label only: it has no average to sort by.
        assert (
            store._rows(  # type: ignore[attr-defined]
                "SELECT target_id, name FROM score_rollups_by_average"
                " WHERE project_id = %(p)s AND target_id = 's6'",
                {"p": project},
            )
            == []
        )


def test_traces_sorted_by_a_score(store: Store):
    project = _write(store)
    by_quality = ScoreSort(name="quality")
    # Trace 2's score is on one of its spans: it counts for the trace.
    assert _traces(store, project, by_quality) == [2, 3, 1, 7, 6, 5, 4]
    assert _traces(store, project, ScoreSort(name="quality", descending=False)) == [
        1,
        3,
        2,
        7,
        6,
        5,
        4,
    ]
    assert _traces(store, project, by_quality, status="error") == [2, 4]
    assert _traces(store, project, by_quality, session_id="s3") == [3]
    missing = ScoreFilter(name="quality", missing=True)
    assert _traces(store, project, by_quality, scores=[missing]) == [7, 6, 5, 4]


def test_a_cursor_of_another_sort_is_refused(store: Store):
    project = _write(store)
    other = store.list_sessions(project, SessionQuery(limit=1)).next_cursor
    labelled = store.list_sessions(
        project, SessionQuery(limit=1, score_sort=ScoreSort(name="topic", by="label"))
    ).next_cursor
    for cursor in (other, labelled):
        with pytest.raises(BadRequest):
            store.list_sessions(
                project, SessionQuery(limit=1, cursor=cursor, score_sort=ScoreSort(name="quality"))
            )
    # A score sort's cursor has the same types as another's: it names its sort.
    quality = store.list_sessions(
        project, SessionQuery(limit=1, score_sort=ScoreSort(name="quality"))
    ).next_cursor
    for sort in (
        ScoreSort(name="quality", descending=False),
        ScoreSort(name="topic"),
        ScoreSort(name="quality", by="label"),
    ):
        with pytest.raises(BadRequest):
            store.list_sessions(project, SessionQuery(limit=1, cursor=quality, score_sort=sort))


@pytest.mark.clickhouse
def test_clickhouse_finds_the_rows_without_a_value_among_the_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """ClickHouse: past the scored rows, the Sessions or Traces list as it opens (but for
    its score sort) checks the newest rows, as its own pick reads them, for a value of
    the name, instead of rolling up every row and grouping every value of the name."""
    with own_store(tmp_path) as store:
        project = _write(store)
        statements = recorded_sql(store)
        assert _sessions(store, project, ScoreSort(name="quality")) == [
            "s2",
            "s3",
            "s1",
            "s4",
            "s7",
            "s6",
            "s5",
        ]
        every_value = [
            sql
            for sql in statements
            if "FROM score_rollups WHERE" in sql and "target_id IN" not in sql
        ]
        assert statements and every_value == []
        assert not [sql for sql in statements if "NOT IN" in sql]
        # The same for the Traces list, along its own pick of the newest traces (which
        # gives up on traces older than a month: these are recent).
        recent = store.create_project("recent").id
        ago = (time.time_ns() - T0) // MS - 60_000
        store.write_spans(
            recent, [record(i, i, start=ago + i * 100, session=f"s{i}") for i in range(1, 8)]
        )
        store.write_scores(
            recent,
            [
                score("a", "quality", 0.5, trace=2, session="s2"),
                score("b", "quality", 1.0, trace=5),
            ],
        )
        assert _traces(store, recent, ScoreSort(name="quality")) == [5, 2, 7, 6, 4, 3, 1]
        # Its pick gives up on a page it cannot fill (the read is then as before): a
        # first page of 3 with stretches of one trace a row wanted is filled by it.
        monkeypatch.setattr(clickhouse_sorted, "STRETCH_PER_ROW", 1)
        monkeypatch.setattr(clickhouse_sorted, "MIN_STRETCH", 1)
        statements.clear()
        page = store.list_traces(recent, TraceQuery(limit=3, score_sort=ScoreSort(name="quality")))
        assert [int(t.trace_id, 16) for t in page.items] == [5, 2, 7]
        assert statements and not [sql for sql in statements if "NOT IN" in sql]


def test_clickhouse_filtered_sort_in_a_window_reads_no_whole_project(tmp_path: Path):
    """ClickHouse: a score sort with a window start and a user or tag filter merges only
    the traces the filter's labels name (never every trace of the project, as the
    filter's subquery did in each statement), and walks the rows without a value along
    the window's rows instead of leaving out every value of the name at once."""
    with own_store(tmp_path) as store:
        project = _write_windowed(store)
        statements = recorded_sql(store)
        window = ns_to_datetime(record(4, 4, start=400).start_ns)
        quality = ScoreSort(name="quality")
        assert _sessions(store, project, quality, start=window, user_id="u2") == [
            "s8",
            "s6",
            "s4",
        ]
        assert _sessions(store, project, quality, start=window, tag="beta") == ["s6", "s7"]
        merges = [sql for sql in statements if "user_id = " in sql or "has(tags" in sql]
        assert merges
        assert all("trace_labels" in sql for sql in merges)
        assert not [sql for sql in statements if "NOT IN" in sql]
