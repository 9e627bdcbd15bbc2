"""The SQLite search index without positions (migration 0020): it keeps none, a phrase
is found only where its words are next to each other (checked on the spans' text, in
every list's plan, relevance and search inside a session), relevance still counts
occurrences, and a store indexed with positions is indexed again when it opens."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from tests.store.test_contract import record
from tests.store.test_search_sqlite import _spans
from threadline.server.model import SessionQuery, TraceQuery
from threadline.server.store.sqlite import SQLiteStore, search
from threadline.server.store.sqlite.driver import sqlite3


def _chat(text: str) -> str:
    return json.dumps([{"role": "user", "content": text}])


def _store(tmp_path: Path) -> tuple[SQLiteStore, int]:
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    store.write_spans(
        project,
        [
            # The phrase's words apart, in one span, and each in a span of its own.
            record(1, 1, start=0, session="apart", input=_chat("the policy on a refund")),
            record(2, 2, start=10, session="split", input=_chat("ask for a refund")),
            record(2, 3, 2, start=11, session="split", input=_chat("policy pages")),
            # The phrase itself, in a later turn of a session.
            record(3, 4, start=20, session="together", input=_chat("hello")),
            record(4, 5, start=30, session="together", input=_chat("our Refund Policy is")),
            # CJK characters apart and together.
            record(5, 6, start=40, session="cjk-apart", input=_chat("東の京")),
            record(6, 7, start=50, session="cjk", input=_chat("東京へ行く")),
        ],
    )
    return store, project


def _sessions(store: SQLiteStore, project: int, q: str, **extra) -> list[str]:
    return sorted(
        s.session_id for s in store.list_sessions(project, SessionQuery(q=q, **extra)).items
    )


def _traces(store: SQLiteStore, project: int, q: str, **extra) -> list[str]:
    return sorted(t.trace_id for t in store.list_traces(project, TraceQuery(q=q, **extra)).items)


def test_the_index_keeps_no_positions(tmp_path: Path):
    store, _ = _store(tmp_path)
    conn = sqlite3.connect(tmp_path / "t.db")
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.hits USING fts5vocab(main, search_text, instance)")
        offsets = conn.execute("SELECT offset FROM temp.hits WHERE term = 'refund'").fetchall()
        assert offsets and all(offset is None for (offset,) in offsets)
    finally:
        conn.close()
        store.close()


@pytest.mark.parametrize("plan", ["rare", "common"])
def test_a_phrase_matches_only_where_its_words_are_next_to_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plan: str
):
    if plan == "common":  # every query walks the lists in their order
        monkeypatch.setattr(search, "_COMMON_BOUNDS", (1, 1))
    store, project = _store(tmp_path)
    try:
        assert _sessions(store, project, '"refund policy"') == ["together"]
        assert _traces(store, project, '"refund policy"') == [f"{4:032x}"]
        assert _sessions(store, project, "refund policy") == ["apart", "split", "together"]
        # A phrase with a word, and a phrase with a prefix.
        assert _sessions(store, project, 'our "refund policy"') == ["together"]
        assert _sessions(store, project, '"refund pol"*') == []
        assert _sessions(store, project, "refund pol*") == ["apart", "split", "together"]
        # don't / e-mail style words are phrases too.
        assert _sessions(store, project, "policy-is") == ["together"]
        assert _sessions(store, project, "東京") == ["cjk"]
        assert _sessions(store, project, '"refund policy"', sort="relevance") == ["together"]
        assert _traces(store, project, "東京", sort="relevance") == [f"{6:032x}"]
    finally:
        store.close()


def test_search_inside_a_session_checks_the_phrase(tmp_path: Path):
    store, project = _store(tmp_path)
    try:
        assert store.find_in_session(project, "apart", '"refund policy"') == []
        assert store.find_in_session(project, "split", '"refund policy"') == []
        [found] = store.find_in_session(project, "together", '"refund policy"')
        assert found.turn == 2
    finally:
        store.close()


def test_relevance_counts_occurrences_without_positions(tmp_path: Path):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    store.write_spans(
        project,
        [
            record(1, 1, start=0, session="once", input=_chat("a kumquat, and more words here")),
            record(2, 2, start=10, session="thrice", input=_chat("kumquat kumquat kumquat")),
            record(3, 3, start=20, session="twice", input=_chat("kumquat or kumquat, then")),
        ],
    )
    try:
        ranked = store.list_sessions(project, SessionQuery(q="kumquat", sort="relevance"))
        assert [s.session_id for s in ranked.items] == ["thrice", "twice", "once"]
    finally:
        store.close()


def test_a_store_indexed_with_positions_is_indexed_again_when_it_opens(tmp_path: Path):
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    project = store.create_project("p").id
    store.write_spans(project, _spans(30))
    store.close()
    # As a store of the version before: 0016's index, 0020 not applied.
    conn = sqlite3.connect(path)
    migrations = resources.files("threadline.server.store.sqlite") / "migrations"
    conn.executescript(
        (migrations / "0016_search_contentless_delete.sql").read_text()
        + "DELETE FROM schema_migrations WHERE version = 20;"
    )
    conn.close()
    store = SQLiteStore(path)
    try:
        conn = sqlite3.connect(path)
        (made,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'search_text'"
        ).fetchone()
        conn.close()
        assert "detail = none" in made
        assert _sessions(store, project, "kumquats") == ["s0", "s1", "s2"]
        assert _sessions(store, project, '"question 8 about"') == ["s2"]
        assert _sessions(store, project, '"about 8"') == []
        assert len(store.find_in_session(project, "s1", "kumquats")) == 10
    finally:
        store.close()
