"""The bulk export's span reads keep their connection's page cache small: a store read
through once does not leave 16 MiB of its pages behind on every reader connection."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from tests.spans import T0, span_record
from threadline.server import export
from threadline.server.model import SessionQuery, SpanRecord
from threadline.server.store.sqlite import SQLiteStore
from threadline.server.store.sqlite.passing_reads import PASSING_CACHE_KIB

TRACES = 4000
SPANS_PER_TRACE = 10  # ~1 KB a span: a file of ~45 MB, far past a connection's cache
LIST_SESSIONS = 30_000  # a sessions table of ~30 MB (their first input and last output)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _fill(path: Path) -> list[str]:
    store = SQLiteStore(path)
    project = store.create_project("default").id
    trace_ids = [f"{t + 1:032x}" for t in range(TRACES)]
    batch: list[SpanRecord] = []
    for t in range(TRACES):
        for s in range(SPANS_PER_TRACE):
            batch.append(
                span_record(
                    t + 1,
                    t * SPANS_PER_TRACE + s + 1,
                    T0 + t * 10**9 + s * 10**6,
                    # Under the size that is packed: stored as written, ~0.9 KB a span.
                    input=f"question {t}-{s} " + "q" * 440,
                    output=f"answer {t}-{s} " + "a" * 440,
                )
            )
        if len(batch) >= 5000:
            store.write_spans(project, batch)
            batch = []
    store.write_spans(project, batch)
    store.close()
    return trace_ids


def test_the_exports_reads_leave_no_full_page_cache_behind(tmp_path: Path):
    path = tmp_path / "threadline.db"
    trace_ids = _fill(path)
    assert path.stat().st_size > 40e6
    store = SQLiteStore(path)
    try:
        project = store.list_projects()[0].id
        store.trace_details_json(project, trace_ids[:50])  # code paths and first pages
        before = _rss_mb()
        exported = 0
        for i in range(0, len(trace_ids), 50):
            found = store.trace_details_json(project, trace_ids[i : i + 50])
            exported += sum(map(len, found.values()))
        growth = _rss_mb() - before
        assert exported > 40e6
        # With the connection's own 16 MiB cache the growth was 12-13 MB.
        assert growth < PASSING_CACHE_KIB / 1024 + 4, growth
        # The connection keeps its usual cache limit for the reads that follow.
        with store._read() as conn:
            assert conn.execute("PRAGMA cache_size").fetchone()[0] == -16384
    finally:
        store.close()


def _fill_sessions(path: Path) -> None:
    store = SQLiteStore(path)
    project = store.create_project("default").id
    for first in range(0, LIST_SESSIONS, 5000):
        store.write_spans(
            project,
            [
                span_record(
                    s + 1,
                    s + 1,
                    T0 + s * 10**9,
                    name="turn",
                    kind="SERVER",
                    input=f"question {s} " + "q" * 440,
                    output=f"answer {s} " + "a" * 440,
                    session_id=f"s-{s:06d}",
                )
                for s in range(first, first + 5000)
            ],
        )
    store.close()


def test_an_exports_list_pages_leave_no_full_page_cache_behind(tmp_path: Path):
    """The sessions CSV reads only the list's rows, page by page: they too pass once."""
    path = tmp_path / "threadline.db"
    # Filled by another process: the memory this one's writer freed would be reused by
    # the reads, and hide what they keep.
    filling = multiprocessing.get_context("spawn").Process(target=_fill_sessions, args=(path,))
    filling.start()
    filling.join()
    assert filling.exitcode == 0
    store = SQLiteStore(path)
    try:
        project = store.list_projects()[0].id
        before = _rss_mb()
        exported = sum(map(len, export.sessions(store, project, SessionQuery(), "csv", False, 60)))
        growth = _rss_mb() - before
        assert exported > 25e6
        # With the connection's own 16 MiB cache the growth was 20 MB (with a small one, 6).
        assert growth < PASSING_CACHE_KIB / 1024 + 8, growth
        with store._read() as conn:
            assert conn.execute("PRAGMA cache_size").fetchone()[0] == -16384
    finally:
        store.close()
