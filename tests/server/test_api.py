"""The JSON query API: paging, filters, isolation between projects, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.otlp import BASE_NS, new_span_id, new_trace_id, request, span

MS = 1_000_000
SECOND = 1000 * MS


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


def _send_session(
    server, session_id: str, user: str, starts: list[int], error: bool = False, text: str = "hello"
) -> list[str]:
    spans, trace_ids = [], []
    for start in starts:
        trace_id = new_trace_id()
        trace_ids.append(trace_id)
        spans.append(
            span(
                trace_id,
                new_span_id(),
                name="turn",
                start_ns=start,
                end_ns=start + SECOND,
                error=error,
                attributes={
                    "threadline.session.id": session_id,
                    "threadline.user.id": user,
                    "threadline.span.input": f'"{text}"',
                },
            )
        )
    assert server.export(request(spans).SerializeToString()).status_code == 200
    return trace_ids


def _all_pages(server, path: str, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        page = server.get(path, cursor=cursor, **params)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_sessions_paging_newest_activity_first(server):
    for i in range(23):
        _send_session(server, f"page-{i:02d}", "u", [BASE_NS + i * SECOND])
    listed = _all_pages(server, "/api/v1/sessions", limit=5, window="all")
    assert [s["session_id"] for s in listed] == [f"page-{i:02d}" for i in reversed(range(23))]
    first = server.get("/api/v1/sessions", limit=5, window="all")
    assert len(first["items"]) == 5 and first["next_cursor"]


def test_traces_paging_and_filters(server):
    a = _send_session(server, "filters-a", "alice", [BASE_NS + i * SECOND for i in range(7)])
    b = _send_session(
        server, "filters-b", "bob", [BASE_NS + 100 * SECOND], error=True, text="needle in here"
    )
    listed = _all_pages(server, "/api/v1/traces", limit=3, window="all")
    assert [t["trace_id"] for t in listed] == [*b, *reversed(a)]
    assert {
        t["trace_id"] for t in server.get("/api/v1/traces", session_id="filters-a")["items"]
    } == set(a)
    assert [
        t["trace_id"] for t in server.get("/api/v1/traces", user_id="bob", window="all")["items"]
    ] == b
    assert [
        t["trace_id"] for t in server.get("/api/v1/traces", status="error", window="all")["items"]
    ] == b
    assert [
        t["trace_id"] for t in server.get("/api/v1/traces", q="needle", window="all")["items"]
    ] == b
    window = server.get(
        "/api/v1/traces",
        start=_iso(BASE_NS + 2 * SECOND + SECOND // 2),
        end=_iso(BASE_NS + 4 * SECOND),
    )
    assert [t["trace_id"] for t in window["items"]] == [a[4], a[3], a[2]]


def test_sessions_filters_user_text_and_time_overlap(server):
    _send_session(server, "long-running", "carol", [BASE_NS, BASE_NS + 3600 * SECOND])
    _send_session(server, "short-early", "dave", [BASE_NS + 60 * SECOND], text="refund please")
    _send_session(server, "short-late", "dave", [BASE_NS + 7200 * SECOND])

    def ids(**params):
        return [
            s["session_id"] for s in server.get("/api/v1/sessions", window="all", **params)["items"]
        ]

    assert ids(user_id="dave") == ["short-late", "short-early"]
    assert ids(q="refund") == ["short-early"]
    assert ids(q="long-run") == ["long-running"]
    # A window in the middle of the long session, when no trace of it started.
    middle = ids(start=_iso(BASE_NS + 1800 * SECOND), end=_iso(BASE_NS + 1900 * SECOND))
    assert middle == ["long-running"]
    assert ids(start=_iso(BASE_NS + 5000 * SECOND)) == ["short-late"]
    assert ids(end=_iso(BASE_NS + 30 * SECOND)) == ["long-running"]
    # Percent signs are text, not wildcards.
    assert ids(q="%") == []


def test_unknown_ids_are_404_json(server):
    for path in (f"/api/v1/traces/{'ab' * 16}", "/api/v1/sessions/nope"):
        response = server.http.get(path)
        assert response.status_code == 404
        assert "error" in response.json()


def test_bad_query_parameters_are_4xx(server):
    for params in (
        {"limit": 0},
        {"limit": "ten"},
        {"cursor": "not-a-cursor"},
        {"start": "yesterday"},
        {"status": "maybe"},
    ):
        response = server.http.get("/api/v1/traces", params=params)
        assert 400 <= response.status_code < 500, (params, response.text)
        assert "error" in response.json()


def test_a_key_sees_only_its_own_project(server, threadline_process):
    (trace_id,) = _send_session(server, "private", "eve", [BASE_NS])
    other = httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": "Bearer " + threadline_process.new_key("someone-else")},
    )
    assert other.get("/api/v1/sessions").json()["items"] == []
    assert other.get("/api/v1/traces").json()["items"] == []
    assert other.get(f"/api/v1/traces/{trace_id}").status_code == 404
    assert other.get("/api/v1/sessions/private").status_code == 404
    # And it cannot write into the first project.
    body = request(
        [span(new_trace_id(), new_span_id(), attributes={"threadline.session.id": "private"})]
    ).SerializeToString()
    assert (
        other.post(
            "/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"}
        ).status_code
        == 200
    )
    assert server.get("/api/v1/sessions/private")["trace_count"] == 1


def test_api_requires_a_valid_key(server):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = httpx.get(server.base_url + "/api/v1/sessions", headers=headers)
        assert response.status_code == 401
        assert "error" in response.json()


def test_openapi_document_and_docs(server):
    spec = httpx.get(server.base_url + "/openapi.json").json()
    for path in (
        "/api/v1/sessions",
        "/api/v1/sessions/{session_id}",
        "/api/v1/traces",
        "/api/v1/traces/{trace_id}",
        "/v1/traces",
    ):
        assert path in spec["paths"]
    assert httpx.get(server.base_url + "/docs").status_code == 200
    health = httpx.get(server.base_url + "/healthz").json()
    assert health.keys() == {
        "status",
        "queued_exports",
        "write_transactions",
        "exports_written",
        "exports_prepared_by_writer",
        "genai_spans_waiting",
        "genai_events_waiting_bytes",
    }
    assert health["status"] == "ok" and health["queued_exports"] == 0, health
    assert health["exports_written"] >= health["write_transactions"] >= 0, health
    # SQLite's worker prepares every export.
    assert health["exports_prepared_by_writer"] == 0, health


def test_times_are_iso_utc(server):
    (trace_id,) = _send_session(server, "times", "u", [BASE_NS])
    trace = server.get(f"/api/v1/traces/{trace_id}")
    parsed = datetime.fromisoformat(trace["start_time"].replace("Z", "+00:00"))
    assert parsed.utcoffset() == timedelta(0)
    assert round(parsed.timestamp() * 1e9) // 1000 == BASE_NS // 1000
