"""Retention on the SQLite store, through the real server: expired traces are deleted
in the background while spans keep arriving, partly expired sessions keep exact
totals, the file gives the space back, and a project's own retention is set through
the API."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.otlp import new_span_id, new_trace_id, request, span
from threadline.server.model import SpanRecord
from threadline.server.store.sqlite import SQLiteStore
from threadline.server.store.sqlite.driver import sqlite3

DAY_NS = 86_400 * 10**9
OLD_TRACES = 1_500
SPANS_PER_TRACE = 10
SESSIONS = 20  # old and new traces share them: every session is partly expired


def _old_spans(now_ns: int) -> list[SpanRecord]:
    """OLD_TRACES traces that ended ten days ago, spread over the sessions."""
    records = []
    for n in range(OLD_TRACES):
        trace_id, root = new_trace_id(), new_span_id()
        start = now_ns - 10 * DAY_NS + n * 1_000_000
        for i in range(SPANS_PER_TRACE):
            records.append(
                SpanRecord(
                    trace_id=trace_id,
                    span_id=root if i == 0 else new_span_id(),
                    parent_span_id=None if i == 0 else root,
                    name="old",
                    kind="INTERNAL",
                    start_ns=start,
                    end_ns=start + 500_000,
                    status="ok",
                    # Text that does not compress away: pages to give back.
                    input=random.randbytes(400).hex(),
                    input_tokens=100,
                    session_id=f"mixed-{n % SESSIONS}" if i == 0 else None,
                )
            )
    return records


def _new_body(session_id: str) -> tuple[str, bytes]:
    trace_id, root = new_trace_id(), new_span_id()
    now = time.time_ns()
    spans = [
        span(
            trace_id,
            root if i == 0 else new_span_id(),
            parent=None if i == 0 else root,
            start_ns=now,
            end_ns=now + 1_000_000,
            attributes={"threadline.session.id": session_id, "gen_ai.usage.input_tokens": 100}
            if i == 0
            else {"gen_ai.usage.input_tokens": 100},
        )
        for i in range(SPANS_PER_TRACE)
    ]
    return trace_id, request(spans).SerializeToString()


def _pages(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        return (
            conn.execute("PRAGMA page_count").fetchone()[0],
            conn.execute("PRAGMA freelist_count").fetchone()[0],
        )


@pytest.mark.slow
def test_retention_deletes_expired_traces_while_ingest_goes_on(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    store = SQLiteStore(data_dir / "threadline.db")
    project = store.create_project("retention")
    key = store.create_key(project.id)
    store.write_spans(project.id, _old_spans(time.time_ns()))
    store.close()
    pages_full, _ = _pages(data_dir / "threadline.db")

    server = start_server(data_dir, tmp_path / "log.txt", "--retention-days", "1")
    acknowledged: list[tuple[str, str]] = []
    slowest = [0.0]
    stop = threading.Event()

    def sender() -> None:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            n = 0
            while not stop.is_set():
                session_id = f"mixed-{n % SESSIONS}"
                trace_id, body = _new_body(session_id)
                began = time.monotonic()
                response = client.post(
                    "/v1/traces",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {key}",
                        "Content-Type": "application/x-protobuf",
                    },
                )
                slowest[0] = max(slowest[0], time.monotonic() - began)
                assert response.status_code == 200, response.text
                acknowledged.append((trace_id, session_id))
                n += 1

    api = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"})
    thread = threading.Thread(target=sender)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while True:
            left = api.get("/api/v1/traces", params={"end": _iso(time.time_ns() - DAY_NS)})
            if not left.json()["items"]:
                break
            assert time.monotonic() < deadline, "expired traces still there after 120 s"
            time.sleep(0.5)
        time.sleep(1.0)  # a little more ingest after the last delete
    finally:
        stop.set()
        thread.join()
    # The freed pages go back to the file system in steps after the deletes.
    deadline = time.monotonic() + 60
    while _pages(data_dir / "threadline.db")[1] >= 512 and time.monotonic() < deadline:
        time.sleep(0.5)
    try:
        assert len(acknowledged) > 50
        # Ingest was never held up for long by the deletes (a batch is a short transaction;
        # the bound leaves room for a loaded machine).
        assert slowest[0] < 5.0, slowest[0]
        stored = _all_traces(api)
        assert {t for t, _ in acknowledged} <= {t["trace_id"] for t in stored}
        assert all(t["span_count"] == SPANS_PER_TRACE for t in stored)
        # Partly expired sessions: their totals are those of the traces they kept.
        for n in range(SESSIONS):
            session_id = f"mixed-{n}"
            members = [t for t in stored if t["session_id"] == session_id]
            session = api.get(f"/api/v1/sessions/{session_id}").json()
            assert session["trace_count"] == len(members)
            assert session["span_count"] == SPANS_PER_TRACE * len(members)
            assert session["input_tokens"] == 100 * SPANS_PER_TRACE * len(members)
            assert session["start_time"] == min(t["start_time"] for t in members)
    finally:
        api.close()
        stop_server(server)
    # The file gave the deleted traces' pages back (incremental auto-vacuum): it is
    # smaller than before, new spans and all, and keeps few free pages.
    pages_after, free_after = _pages(data_dir / "threadline.db")
    assert pages_after < pages_full, (pages_full, pages_after)
    assert free_after < 512, free_after


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / 1e9))


def _all_traces(api: httpx.Client) -> list[dict]:
    stored: list[dict] = []
    cursor = None
    while True:
        page = api.get(
            "/api/v1/traces", params={"limit": 500, **({"cursor": cursor} if cursor else {})}
        ).json()
        stored += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return stored


def test_a_projects_retention_through_the_api(server) -> None:
    # Spans at the tests' fixed epoch (2026-09-21) are months old: one day of retention
    # set on this project deletes them, and only them.
    trace_id, root = new_trace_id(), new_span_id()
    server.send([span(trace_id, root)])
    assert server.get("/api/v1/settings/retention") == {
        "days": None,
        "server_days": 0,
        "effective_days": 0,
    }
    # An integer only: a string of digits (even Python's "1_000") or a float is refused.
    for bad in (
        {"days": -1},
        {"days": "soon"},
        {"days": 40_000},
        {},
        {"days": "1_000"},
        {"days": "30"},
        {"days": 30.0},
        {"days": True},
    ):
        response = server.http.put("/api/v1/settings/retention", json=bad)
        assert response.status_code == 422 and "error" in response.json(), response.text
    shown = server.http.put("/api/v1/settings/retention", json={"days": 1}).json()
    assert shown == {"days": 1, "server_days": 0, "effective_days": 1}
    deadline = time.monotonic() + 20
    while server.http.get(f"/api/v1/traces/{trace_id}").status_code != 404:
        assert time.monotonic() < deadline, "the expired trace was not deleted"
        time.sleep(0.2)
    assert server.http.put("/api/v1/settings/retention", json={"days": None}).json()["days"] is None
