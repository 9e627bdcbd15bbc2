"""A trace's context use travels with its packed parts (migration 0021): the reads by id
(a Sessions page, a session's and a trace's detail) take it from the rows they read,
without a second lookup of the same ids in ``trace_context``, which stays for the
filters and sorts that join it in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.chdb_http import own_database_url
from tests.store.clickhouse_statements import own_store, recorded_sql
from tests.store.test_contract import record
from threadline.server.model import SessionQuery
from threadline.server.store import open_store
from threadline.server.store.clickhouse.store import ClickHouseStore

pytestmark = pytest.mark.clickhouse

TRACE = f"{1:032x}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    with own_store(tmp_path) as opened:
        yield opened


def _turn(store: ClickHouseStore, project: int) -> None:
    """A trace of session "s" in two exports: gpt-4o-mini's window is 128,000 tokens, so
    its calls fill a tenth of it, then half (the trace's context use)."""
    store.write_spans(project, [record(1, 1, session="s")])
    store.write_spans(project, [record(1, 2, 1, start=1, tokens=(12_800, 1), model="gpt-4o-mini")])
    store.write_spans(project, [record(1, 3, 1, start=2, tokens=(64_000, 1), model="gpt-4o-mini")])


def _context_uses(store: ClickHouseStore, project: int) -> list[float | None]:
    """The trace's context use as the Sessions page, the session's detail and the trace's
    detail each give it."""
    page = store.list_sessions(project, SessionQuery(limit=10)).items
    session = store.get_session(project, "s")
    trace = store.get_trace(project, TRACE)
    assert session is not None and trace is not None
    return [page[0].peak_context_use, session.traces[0].context_use, trace.context_use]


def test_reads_by_id_take_the_context_use_from_the_packed_parts(store: ClickHouseStore):
    project = store.create_project("p").id
    _turn(store, project)
    statements = recorded_sql(store)
    assert _context_uses(store, project) == [0.5, 0.5, 0.5]
    assert not [sql for sql in statements if "trace_context" in sql], statements
    # Without trace_context's rows, the same: the reads do not look there.
    store._ch.command("TRUNCATE TABLE trace_context")
    assert _context_uses(store, project) == [0.5, 0.5, 0.5]


def test_a_trace_with_only_its_context_use_is_not_stored_yet(store: ClickHouseStore):
    """As on a replica that lags: the context row is visible, the spans' rows are not."""
    project = store.create_project("p").id
    _turn(store, project)
    store._ch.command(
        "INSERT INTO trace_context (project_id, trace_id, context_use, start_ns, end_ns)"
        f" VALUES ({project}, '{2:032x}', 0.9, 1, 2)"
    )
    assert store.get_trace(project, f"{2:032x}") is None
    page = store.list_sessions(project, SessionQuery(limit=10)).items
    assert [(s.session_id, s.trace_count, s.peak_context_use) for s in page] == [("s", 1, 0.5)]


def test_the_migration_copies_the_context_use_stored_before_it(
    store: ClickHouseStore, tmp_path: Path
):
    """A store written before migration 0021 (its packed parts without context use) gets
    it from trace_context; a migration run twice (a server stopped halfway) counts each
    row once."""
    project = store.create_project("p").id
    _turn(store, project)
    sync = {"mutations_sync": 2}
    for _ in range(2):
        store._ch.command(
            "ALTER TABLE trace_parts_packed UPDATE context_use = NULL WHERE 1", settings=sync
        )
        store._ch.command("ALTER TABLE threadline_schema DELETE WHERE version = 21", settings=sync)
        assert store.get_trace(project, TRACE).context_use is None  # type: ignore[union-attr]
        open_store(own_database_url(tmp_path)).close()  # migrates
        assert _context_uses(store, project) == [0.5, 0.5, 0.5]
    store._ch.command("OPTIMIZE TABLE trace_parts_packed FINAL")
    ((rows, traces),) = store._rows("SELECT count(), uniqExact(trace_id) FROM trace_parts_packed")
    assert rows == traces == 1
