"""The writer's group commit on a real SQLite store: the exports that became ready while
a transaction ran are committed together, each is answered only once committed, and an
export that cannot be written fails alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.store.test_contract import record
from threadline.server.ingest.normalize import Normalized
from threadline.server.ingest.prepare import Prepared
from threadline.server.ingest.writer import SpanWriter
from threadline.server.store.sqlite import SQLiteStore
from threadline.server.store.sqlite.driver import sqlite3


def _prepared(store: SQLiteStore, project: int, trace: int, session: str) -> Prepared:
    spans = [record(trace, trace * 10 + i, start=i, session=session) for i in range(3)]
    return Prepared(Normalized(spans), store.span_preparer()(project, spans))


async def _held_writer_then(store: SQLiteStore, writer: SpanWriter, exports: list) -> list:
    """Send the exports while another connection holds the write lock, so that the
    first is stuck in its transaction and the rest wait in line; then let go."""
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        tasks = [asyncio.ensure_future(writer.write(*exports[0]))]
        await asyncio.sleep(0.3)  # the writer has taken it, and waits for the lock
        tasks += [asyncio.ensure_future(writer.write(project, p)) for project, p in exports[1:]]
        await asyncio.sleep(0.3)
        assert not any(task.done() for task in tasks)  # none answered before its commit
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_exports_ready_together_share_one_transaction(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    writer = SpanWriter(store)
    try:
        project = store.create_project("p").id
        exports = [(project, _prepared(store, project, n, "s")) for n in range(1, 6)]
        assert asyncio.run(_held_writer_then(store, writer, exports)) == [None] * 5
        # The first alone, the four that waited behind it together.
        assert (writer.counts.transactions, writer.counts.exports) == (2, 5)
        session = store.get_session(project, "s")
        assert session is not None and (session.trace_count, session.span_count) == (5, 15)
    finally:
        writer.close()
        store.close()


def test_an_export_that_cannot_be_written_fails_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    writer = SpanWriter(store)
    try:
        project = store.create_project("p").id
        exports = [(project, _prepared(store, project, n, f"s{n}")) for n in range(1, 5)]
        # A row SQLite cannot take (a value it cannot bind) in the third export.
        bad = exports[2][1].for_store
        next(iter(bad.rows.values()))[0][-1] = object()  # type: ignore[union-attr]
        answers = asyncio.run(_held_writer_then(store, writer, exports))
        assert answers[:2] == [None, None] and answers[3] is None, answers
        assert isinstance(answers[2], sqlite3.Error), answers
        # The first alone; the group of three failed, then each was written alone.
        assert (writer.counts.transactions, writer.counts.exports) == (3, 3)
        for n in (1, 2, 4):
            assert store.get_trace(project, f"{n:032x}") is not None
        assert store.get_trace(project, f"{3:032x}") is None
    finally:
        writer.close()
        store.close()


def test_a_closed_writer_takes_nothing(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    writer = SpanWriter(store)
    writer.close()
    project = store.create_project("p").id
    with pytest.raises(RuntimeError):
        asyncio.run(writer.write(project, _prepared(store, project, 1, "s")))
    store.close()
