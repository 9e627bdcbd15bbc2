"""A session's detail a page of turns at a time, on every backend: the pages follow
one another in turn order (start, then trace id) with no turn missed or repeated, a
page may start at a turn number, the rollup is the whole session's on every page, and
a cursor of another session or project is refused."""

from __future__ import annotations

import random

import pytest

from tests.store import test_contract
from tests.store.test_contract import record, score, summary
from threadline.server.errors import BadRequest
from threadline.server.store import Store
from threadline.server.store.session_turns import TurnPage

backend = test_contract.backend
store = test_contract.store

TURNS = 23


def _write_session(store: Store, project: int, session: str, first: int) -> list[str]:
    """``TURNS`` one-span traces of ``session``, written in random order; turns 4 and 5
    (and 9 and 10) start together, so the trace id orders them. Their ids in turn order."""
    starts = [i * 10 for i in range(TURNS)]
    starts[4] = starts[3]
    starts[9] = starts[8]
    spans = [
        record(first + i, first + i, start=starts[i], length=5, session=session)
        for i in range(TURNS)
    ]
    random.Random(7).shuffle(spans)
    for i in range(0, TURNS, 4):
        store.write_spans(project, spans[i : i + 4])
    return [f"{first + i:032x}" for i in range(TURNS)]


def test_pages_of_turns_follow_one_another(store: Store) -> None:
    project = store.create_project("p").id
    order = _write_session(store, project, "s", 1)
    _write_session(store, project, "other", 100)
    store.write_scores(project, [score("t", "quality", 0.5, session="s", trace=17)])
    whole = store.get_session(project, "s")
    assert whole is not None
    assert [t.trace_id for t in whole.traces] == order
    assert (whole.first_turn, whole.next_cursor) == (1, None)

    seen: list[str] = []
    firsts: list[int] = []
    cursor = None
    while True:
        page = store.get_session(project, "s", TurnPage(limit=5, cursor=cursor))
        assert page is not None
        # The whole session's rollup on every page.
        assert (page.trace_count, page.span_count, page.duration_ms) == (
            whole.trace_count,
            whole.span_count,
            whole.duration_ms,
        )
        assert len(page.traces) == 5 or page.next_cursor is None
        firsts.append(page.first_turn)
        seen += [t.trace_id for t in page.traces]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == order
    assert firsts == [1, 6, 11, 16, 21]
    # A turn's scores come with it on its page.
    (fourth,) = [
        t
        for t in store.get_session(project, "s", TurnPage(limit=5, turn=16)).traces
        if t.trace_id == f"{17:032x}"
    ]
    assert fourth.scores == {"quality": summary(1, 0.5)}


def test_a_page_starts_at_a_turn_number(store: Store) -> None:
    project = store.create_project("p").id
    order = _write_session(store, project, "s", 1)
    for turn in (1, 4, 5, 10, 22, 23):
        page = store.get_session(project, "s", TurnPage(limit=3, turn=turn))
        assert page is not None
        assert page.first_turn == turn
        assert [t.trace_id for t in page.traces] == order[turn - 1 : turn + 2]
        assert (page.next_cursor is None) == (turn + 3 > TURNS)
        if page.next_cursor:
            after = store.get_session(project, "s", TurnPage(limit=3, cursor=page.next_cursor))
            assert after is not None and after.first_turn == turn + 3
            assert [t.trace_id for t in after.traces] == order[turn + 2 : turn + 5]
    past = store.get_session(project, "s", TurnPage(limit=3, turn=TURNS + 1))
    assert past is not None and past.traces == [] and past.next_cursor is None
    assert past.trace_count == TURNS
    # No turns: the rollup alone.
    bare = store.get_session(project, "s", TurnPage(limit=0))
    assert bare is not None and bare.traces == [] and bare.trace_count == TURNS
    assert store.get_session(project, "nothing", TurnPage(limit=3)) is None


def test_a_cursor_reads_only_its_own_session(store: Store) -> None:
    project = store.create_project("p").id
    other_project = store.create_project("q").id
    _write_session(store, project, "s", 1)
    _write_session(store, project, "other", 100)
    _write_session(store, other_project, "s", 1)
    page = store.get_session(project, "s", TurnPage(limit=5))
    assert page is not None and page.next_cursor
    for project_id, session_id in ((project, "other"), (other_project, "s")):
        with pytest.raises(BadRequest):
            store.get_session(project_id, session_id, TurnPage(limit=5, cursor=page.next_cursor))
    for forged in ("nonsense", page.next_cursor[:-3]):
        with pytest.raises(BadRequest):
            store.get_session(project, "s", TurnPage(limit=5, cursor=forged))


def test_search_inside_a_long_session_numbers_its_turns(store: Store) -> None:
    """Long enough for SQLite to look for a rare word across its whole index at once; a
    word of every turn (more matches than the index read allows) turn by turn."""
    project = store.create_project("p").id
    turns = 300
    spans = [
        record(i + 1, i + 1, start=i * 10, length=5, session="s", input=f'"common w{i:04d} twice"')
        for i in range(turns)
    ]
    spans.append(record(1000, 1000, start=5, session="elsewhere", input='"w0277 common"'))
    spans[12] = record(13, 13, start=120, length=5, session="s", input='"w0277 again"')
    for i in range(0, len(spans), 50):
        store.write_spans(project, spans[i : i + 50])
    rare = store.find_in_session(project, "s", "w0277")
    assert [(m.turn, m.trace_id) for m in rare] == [(13, f"{13:032x}"), (278, f"{278:032x}")]
    common = store.find_in_session(project, "s", "common")
    assert [m.turn for m in common] == [t for t in range(1, turns + 1) if t != 13]
    assert store.find_in_session(project, "s", "nowhere") == []
