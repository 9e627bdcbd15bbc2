"""The Users list on every backend: a user's row holds the totals of the traces in the
window whose user is theirs, however the traces were split into exports (the user
riding on a root exported after the spans that carry the tokens), with an export
delivered twice counted once; and the score summaries of those traces and of their
sessions, in the window too. (On ClickHouse the list reads ``user_activity``, narrow
rows per trace and export sorted by time, not the trace parts.)"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.store import test_contract
from tests.store.clickhouse_statements import own_store, recorded_with_params
from tests.store.test_contract import MS, T0, record, score, summary
from threadline.server.model import (
    ScoreSummary,
    SpanRecord,
    UserQuery,
    datetime_to_ns,
    ns_to_datetime,
)
from threadline.server.store import Store

backend = test_contract.backend
store = test_contract.store

HOUR_MS = 3600 * 1000


def _at(ms: int) -> datetime:
    return ns_to_datetime(T0 + ms * MS)


def _exports() -> list[list[SpanRecord]]:
    """Four users' traces, each export a list; some exports twice."""
    late = 5 * HOUR_MS
    model_calls = [
        record(1, 11, 10, start=10, tokens=(100, 10), cost=0.5),
        record(1, 12, 10, start=20, tokens=(7, 3), cost=0.25, error=True),
    ]
    return [
        # u's first trace: the model calls first, with no user; the root, naming the user
        # and session s1, last. The model calls are delivered twice.
        model_calls,
        model_calls,
        [record(1, 10, start=0, length=100, session="s1", user="u")],
        # u's second trace: the root names nobody, a child names u and session s2.
        [record(2, 20, start=1000, length=50)],
        [record(2, 21, 20, start=1010, tokens=(5, 5), session="s2", user="u")],
        [record(2, 21, 20, start=1010, tokens=(5, 5), session="s2", user="u")],
        # w's trace: the root's user wins over a child's.
        [
            record(3, 30, start=2000, length=30, user="w", session="s3"),
            record(3, 31, 30, start=2005, tokens=(1, 1), user="x"),
        ],
        # v's trace, hours later; and a trace of nobody's.
        [record(4, 40, start=late, length=10, user="v", tokens=(2, 0), session="s1")],
        [record(5, 50, start=late + 5, tokens=(9, 9))],
    ]


def _write(store: Store) -> int:
    project = store.create_project("p").id
    for export in _exports():
        store.write_spans(project, export)
    store.write_scores(
        project,
        [
            score("a", "quality", 1, trace=1),
            score("b", "quality", 0, session="s1"),
            score("c", "quality", 0.5, trace=4),
            score("d", "topic", "x", trace=2, at=1),
        ],
    )
    return project


def _rows(store: Store, project: int, **query) -> list[tuple]:
    return _rows_of(store.list_users(project, UserQuery(**query)).items)


def _scores(store: Store, project: int, **query) -> dict[str, dict[str, ScoreSummary]]:
    return {u.user_id: u.scores for u in store.list_users(project, UserQuery(**query)).items}


U_ROW = ("u", 2, 2, 112, 18, 130, 0.75, 1, _at(0), _at(1050))
W_ROW = ("w", 1, 1, 1, 1, 2, None, 0, _at(2000), _at(2030))
V_ROW = ("v", 1, 1, 2, 0, 2, None, 0, _at(5 * HOUR_MS), _at(5 * HOUR_MS + 10))


def test_users_list_totals_over_split_and_repeated_exports(store: Store):
    project = _write(store)
    assert _rows(store, project) == [V_ROW, W_ROW, U_ROW]
    # The window keeps the traces active in it; q a part of the user id, any case.
    assert _rows(store, project, start=_at(0), end=_at(HOUR_MS)) == [W_ROW, U_ROW]
    u_later = ("u", 1, 1, 5, 5, 10, None, 0, _at(1000), _at(1050))
    assert _rows(store, project, start=_at(1020), end=_at(2001)) == [W_ROW, u_later]
    assert _rows(store, project, start=_at(HOUR_MS)) == [V_ROW]
    assert _rows(store, project, q="U") == [U_ROW]
    # Pages of one, walked with the cursor, hold every user once, in order.
    walked, cursor = [], None
    while True:
        page = store.list_users(project, UserQuery(limit=1, cursor=cursor))
        walked += [u.user_id for u in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert walked == ["v", "w", "u"]


def test_users_score_summaries_cover_the_window(store: Store):
    project = _write(store)
    # u: trace 1 and its session s1 (which v's later trace is in too), and trace 2.
    everything = {
        "u": {"quality": summary(2, 0.5), "topic": summary(1, None, "x")},
        "v": {"quality": summary(2, 0.25)},
        "w": {},
    }
    assert _scores(store, project) == everything
    # Within the first hour: only the scores of the traces active then, and their
    # sessions': v's trace (and its score) is outside it.
    assert _scores(store, project, start=_at(0), end=_at(HOUR_MS)) == {
        "u": everything["u"],
        "w": {},
    }
    # From u's second trace on: trace 1 and session s1 no longer count for u.
    assert _scores(store, project, start=_at(1020), end=_at(HOUR_MS)) == {
        "u": {"topic": summary(1, None, "x")},
        "w": {},
    }


def test_users_list_as_it_opens_over_recent_activity(store: Store):
    """Users active at every age up to now, walked in pages of two, over 30 days and over
    all time: each once, latest first, with all their traces in the window (the
    ClickHouse list reads back from now only as far as each page needs)."""
    project = store.create_project("p").id
    now_ms = (time.time_ns() - T0) // MS
    ages_h = {"a": [0.5], "b": [2, 400], "c": [3], "d": [30], "e": [24 * 5, 1], "f": [24 * 20]}
    ages_h["g"] = [24 * 40]  # outside 30 days
    trace = 0
    for user, ages in ages_h.items():
        for age in ages:
            trace += 1
            start = now_ms - int(age * HOUR_MS)
            # The model call first, without the user; the root naming them after it.
            store.write_spans(
                project,
                [record(trace, trace * 10 + 1, trace * 10, start=start + 1, tokens=(trace, 1))],
            )
            store.write_spans(
                project, [record(trace, trace * 10, start=start, length=5, user=user)]
            )
    latest = {u: min(a) for u, a in ages_h.items()}
    for window, kept in (({"start": _at(now_ms - 30 * 24 * HOUR_MS)}, 30 * 24), ({}, 10**9)):
        walked, cursor = [], None
        while True:
            page = store.list_users(project, UserQuery(limit=2, cursor=cursor, **window))
            walked += [(u.user_id, u.trace_count, u.input_tokens) for u in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        users = sorted((u for u in ages_h if latest[u] < kept), key=lambda u: latest[u])
        assert [w[0] for w in walked] == users
        assert {w[0]: w[1] for w in walked} == {u: sum(a < kept for a in ages_h[u]) for u in users}


def test_users_score_summaries_count_a_session_named_by_another_export(store: Store):
    """A trace's session named only by its root's export, its user only by a child's
    export: the session's scores are the user's, as opened and over a window."""
    project = store.create_project("p").id
    store.write_spans(project, [record(1, 10, start=0, length=100, session="s")])
    store.write_spans(project, [record(1, 11, 10, start=10, user="u", tokens=(1, 1))])
    store.write_scores(project, [score("a", "quality", 1, session="s")])
    expected = {"u": {"quality": summary(1, 1.0)}}
    assert _scores(store, project) == expected
    assert _scores(store, project, start=_at(0), end=_at(HOUR_MS)) == expected


def test_users_list_pages_hold_each_users_traces_in_every_window(store: Store):
    """Pages walked in every kind of window equal the totals of the traces the window
    holds, added up per user: a user whose latest traces fill many pages' worth of the
    newest (so SQLite reads further back for the next users), a trace running across
    the window's end, users tied on their last activity, a search."""
    project = store.create_project("p").id
    # user, session, start and length (ms), tokens in and out, cost, failed
    traces: list[tuple[str | None, str | None, int, int, int, int, float | None, bool]] = [
        ("a", "sa", 0, 100, 3, 1, 0.5, False),
        ("a", "sa", 500, 10, 2, 2, None, True),
        ("b", "sb", 200, 5000, 7, 0, 0.25, False),
        ("c", None, 300, 10, 1, 1, 0.125, False),
        ("d", "sd", 305, 5, 0, 4, None, False),  # ends with c's trace
        ("d", "sd2", 6000, 10, 1, 0, None, True),
        ("Bee", "sx", 7000, 20, 5, 5, 1.0, False),
        (None, "sn", 7100, 10, 9, 9, 2.0, False),
    ]
    traces += [
        ("busy", f"s{i % 3}", 10_000 + 10 * i, 5, 1, 1, 0.125, i % 7 == 0) for i in range(60)
    ]
    for i, (user, session, start, length, tin, tout, cost, failed) in enumerate(traces, 1):
        spans = [record(i, i * 10, start=start, length=length, user=user, session=session)]
        spans.append(
            record(i, i * 10 + 1, i * 10, start=start, length=1, tokens=(tin, tout), cost=cost)
        )
        store.write_spans(project, spans)
        if failed:
            store.write_spans(
                project, [record(i, i * 10 + 2, i * 10, start=start, length=1, error=True)]
            )

    def expected(start: int | None, end: int | None, q: str = "") -> list[tuple]:
        kept: dict[str, list[tuple]] = {}
        for t in traces:
            user, _, t_start, length = t[:4]
            if user is None or q.lower() not in user.lower():
                continue
            if (start is None or t_start + length >= start) and (end is None or t_start <= end):
                kept.setdefault(user, []).append(t)
        rows = []
        for user, mine in kept.items():
            costs = [t[6] for t in mine if t[6] is not None]
            rows.append(
                (
                    user,
                    len({t[1] for t in mine if t[1] is not None}),
                    len(mine),
                    sum(t[4] for t in mine),
                    sum(t[5] for t in mine),
                    sum(t[4] + t[5] for t in mine),
                    sum(costs) if costs else None,
                    sum(t[7] for t in mine),
                    _at(min(t[2] for t in mine)),
                    _at(max(t[2] + t[3] for t in mine)),
                )
            )
        return sorted(rows, key=lambda r: (r[9], r[0]), reverse=True)

    windows: list[tuple[int | None, int | None, str]] = [
        (None, None, ""),
        (0, None, ""),
        (None, 400, ""),
        (305, 3000, ""),  # b's trace runs across the end; c and d tie on their end
        (1000, 2000, ""),  # only b's trace is active
        (400, 10_300, ""),
        (None, None, "B"),
        (6500, None, "e"),
    ]
    for start, end, q in windows:
        query = {
            "start": None if start is None else _at(start),
            "end": None if end is None else _at(end),
            "q": q or None,
        }
        walked, cursor = [], None
        while True:
            page = store.list_users(project, UserQuery(limit=2, cursor=cursor, **query))
            walked += _rows_of(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert walked == expected(start, end, q), (start, end, q)
        assert _rows(store, project, **query) == expected(start, end, q)


def _rows_of(items: list) -> list[tuple]:
    return [
        (
            u.user_id,
            u.session_count,
            u.trace_count,
            u.input_tokens,
            u.output_tokens,
            u.total_tokens,
            u.cost_usd,
            u.error_count,
            u.first_seen,
            u.last_seen,
        )
        for u in items
    ]


@pytest.mark.clickhouse
def test_clickhouse_picks_a_past_windows_users_before_adding_up(tmp_path: Path):
    """ClickHouse: a window with an end picks its page's users from the rows that ended
    since an hour before the end (widening only while the page is short), then adds up
    only their traces, rather than every trace of the window."""
    with own_store(tmp_path) as store:
        project = store.create_project("p").id
        # A trace of a user every hour for two days; the window ends at the 40th.
        store.write_spans(
            project,
            [record(i, i, start=i * HOUR_MS, length=10, user=f"user{i:02d}") for i in range(1, 49)],
        )
        statements = recorded_with_params(store)
        window = {"start": _at(HOUR_MS), "end": _at(40 * HOUR_MS + 5)}
        walked, cursor = [], None
        while True:
            page = store.list_users(project, UserQuery(limit=2, cursor=cursor, **window))
            walked += [u.user_id for u in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert walked == [f"user{i:02d}" for i in range(40, 0, -1)]
        statements.clear()
        page = store.list_users(project, UserQuery(limit=2, **window))
        assert [u.user_id for u in page.items] == ["user40", "user39"]
        picks, merges = statements[0], statements[-1]
        assert "GROUP BY t_user" in picks[0] and "t_user IN" not in picks[0]
        assert picks[1]["since"] == datetime_to_ns(window["end"]) - 3600 * 10**9
        assert "t_user IN" in merges[0]


def test_users_list_counts_a_long_trace_across_the_windows_end(store: Store):
    """A trace over an hour long across the window's end, exported in two parts: the
    first begun and ended more than an hour before the end, the second begun after the
    end. It is in the window (it began by the end), so its user leads the page with its
    end, however many users were active in the last hour; a trace begun after the end is
    not in it."""
    project = store.create_project("p").id
    end = 10 * HOUR_MS
    store.write_spans(project, [record(1, 10, start=end - 2 * HOUR_MS, length=60_000, user="long")])
    store.write_spans(project, [record(1, 11, 10, start=end + 600_000, length=60_000, user="long")])
    store.write_spans(project, [record(2, 20, start=end - 1_800_000, length=10, user="b")])
    store.write_spans(project, [record(3, 30, start=end - 2_400_000, length=10, user="c")])
    store.write_spans(project, [record(4, 40, start=end + 300_000, length=10, user="after")])
    window = {"start": _at(0), "end": _at(end)}
    rows = [
        ("long", 0, 1, 0, 0, 0, None, 0, _at(end - 2 * HOUR_MS), _at(end + 660_000)),
        ("b", 0, 1, 0, 0, 0, None, 0, _at(end - 1_800_000), _at(end - 1_799_990)),
        ("c", 0, 1, 0, 0, 0, None, 0, _at(end - 2_400_000), _at(end - 2_399_990)),
    ]
    assert _rows(store, project, **window) == rows
    walked, cursor = [], None
    while True:
        page = store.list_users(project, UserQuery(limit=1, cursor=cursor, **window))
        walked += _rows_of(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert walked == rows


def test_users_list_counts_a_trace_part_begun_hours_after_the_windows_end(store: Store):
    """A trace begun in the window whose second part (a model call with tokens) began
    two hours after its end: its user's row holds that part's tokens and ends with it,
    as the trace does, on both stores. (ClickHouse reads the window's rows by time, an
    hour around it, and such a part by the trace's id; it orders its page by the
    activity within that hour, so the rows are compared as a set, and walked.)"""
    project = store.create_project("p").id
    end = 10 * HOUR_MS
    late = end + 2 * HOUR_MS
    store.write_spans(project, [record(1, 10, start=end - 1_800_000, length=10, user="long")])
    store.write_spans(project, [record(1, 11, 10, start=late, length=1000, tokens=(5, 5))])
    store.write_spans(project, [record(2, 20, start=end - 1_200_000, length=10, user="b")])
    store.write_spans(project, [record(3, 30, start=late, length=10, user="after")])
    window = {"start": _at(0), "end": _at(end)}
    rows = [
        ("b", 0, 1, 0, 0, 0, None, 0, _at(end - 1_200_000), _at(end - 1_199_990)),
        ("long", 0, 1, 5, 5, 10, None, 0, _at(end - 1_800_000), _at(late + 1000)),
    ]
    assert sorted(_rows(store, project, **window)) == rows
    walked, cursor = [], None
    while True:
        page = store.list_users(project, UserQuery(limit=1, cursor=cursor, **window))
        walked += _rows_of(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(walked) == rows


def test_users_list_counts_a_trace_part_ended_hours_before_the_windows_start(store: Store):
    """A trace in the window whose root, naming its user, began three hours before its
    start, its model call (with tokens) exported first and over by then: the user's row
    holds the model call's tokens and begins with the trace, as on SQLite, in a window
    open towards now and in one with an end. (ClickHouse reads the window's rows by
    time, an hour around it, and such a part by the trace's id; a trace's rows merge
    into one in the background, which must not matter.)"""
    project = store.create_project("p").id
    start = 10 * HOUR_MS
    early = start - 3 * HOUR_MS
    store.write_spans(project, [record(1, 11, 10, start=early, length=1000, tokens=(5, 5))])
    store.write_spans(
        project, [record(1, 10, start=early, length=3 * HOUR_MS + 600_000, user="long")]
    )
    store.write_spans(project, [record(3, 30, start=start + 60_000, length=10, user="b")])
    store.write_spans(project, [record(4, 40, start=early, length=10, user="before")])
    for window in ({"start": _at(start)}, {"start": _at(start), "end": _at(start + HOUR_MS)}):
        rows = [
            ("long", 0, 1, 5, 5, 10, None, 0, _at(early), _at(start + 600_000)),
            ("b", 0, 1, 0, 0, 0, None, 0, _at(start + 60_000), _at(start + 60_010)),
        ]
        assert _rows(store, project, **window) == rows
        walked, cursor = [], None
        while True:
            page = store.list_users(project, UserQuery(limit=1, cursor=cursor, **window))
            walked += _rows_of(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert walked == rows


@pytest.mark.clickhouse
def test_clickhouse_looks_up_parts_before_the_window_only_for_traces_begun_before_it(
    tmp_path: Path,
):
    """ClickHouse: the page of a window with a start is one statement, reading nothing by
    trace id, while no trace of it began more than an hour before the start; a trace
    that did has the page read again, with its earlier parts looked up by id."""
    with own_store(tmp_path) as store:
        project = store.create_project("p").id
        start = 10 * HOUR_MS
        store.write_spans(project, [record(1, 10, start=start + 60_000, user="a")])
        statements = recorded_with_params(store)
        window = UserQuery(start=_at(start))
        assert [u.user_id for u in store.list_users(project, window).items] == ["a"]
        pages = [sql for sql, _ in statements if "t_user IN" in sql]
        assert len(pages) == 1 and "trace_parts_by_id" not in pages[0]
        store.write_spans(project, [record(2, 21, 20, start=start - 3 * HOUR_MS, tokens=(1, 1))])
        store.write_spans(project, [record(2, 20, start=start - 3 * HOUR_MS, length=4 * HOUR_MS)])
        store.write_spans(project, [record(2, 22, 20, start=start, user="a")])
        statements.clear()
        assert store.list_users(project, window).items[0].input_tokens == 1
        pages = [(sql, params) for sql, params in statements if "t_user IN" in sql]
        assert len(pages) == 2 and "trace_parts_by_id" in pages[1][0]
        assert [f"{2:032x}"] in pages[1][1].values()
