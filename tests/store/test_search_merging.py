"""The search index merges its segments less often than FTS5's default (search_merging.py):
a new store's index has the setting, a store made with the default takes it when it
opens, and every document is still found across the segments left."""

from __future__ import annotations

from pathlib import Path

from tests.store.test_search_sqlite import _spans
from threadline.server.model import TraceQuery
from threadline.server.store.sqlite import SQLiteStore, search_merging
from threadline.server.store.sqlite.driver import sqlite3


def _segments_and_setting(path: Path) -> tuple[int, int | None]:
    conn = sqlite3.connect(path)
    try:
        (segments,) = conn.execute("SELECT count(DISTINCT segid) FROM search_text_idx").fetchone()
        row = conn.execute("SELECT v FROM search_text_config WHERE k = 'automerge'").fetchone()
    finally:
        conn.close()
    return segments, None if row is None else row[0]


def test_a_new_store_merges_less_often_and_finds_every_segments_documents(tmp_path: Path):
    path = tmp_path / "store.db"
    store = SQLiteStore(path)
    project = store.create_project("p").id
    spans = _spans(15)
    for span in spans:  # a transaction each: a segment each
        store.write_spans(project, [span])
    assert _segments_and_setting(path) == (15, search_merging.AUTOMERGE)
    found = store.list_traces(project, TraceQuery(q="kumquats", limit=100, window="all"))
    assert len(found.items) == 15
    store.close()


def test_a_store_made_with_the_default_takes_the_setting_when_it_opens(tmp_path: Path):
    path = tmp_path / "store.db"
    store = SQLiteStore(path)
    project = store.create_project("p").id
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM search_text_config WHERE k = 'automerge'")  # as FTS5 makes it
    conn.commit()
    conn.close()
    assert _segments_and_setting(path)[1] is None
    store = SQLiteStore(path)
    store.write_spans(project, _spans(3))
    assert _segments_and_setting(path)[1] == search_merging.AUTOMERGE
    assert len(store.list_traces(project, TraceQuery(q="answer2", window="all")).items) == 1
    store.close()
