"""A session's detail through the JSON API comes a page of turns at a time, on SQLite
and on ClickHouse (chDB): a default page and a largest one, a cursor reading on with
nothing missed or repeated, a page from a turn number, and a cursor of another
session or of another project refused with a 400."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import ProjectClient
from tests.otlp import BASE_NS, new_span_id, new_trace_id, request, span

MS = 1_000_000
TURNS = 230


def _send_session(server: ProjectClient, session_id: str, turns: int) -> list[str]:
    trace_ids = [new_trace_id() for _ in range(turns)]
    spans = [
        span(
            trace_id,
            new_span_id(),
            name=f"turn-{i}",
            start_ns=BASE_NS + i * 1000 * MS,
            end_ns=BASE_NS + i * 1000 * MS + 500 * MS,
            attributes={"threadline.session.id": session_id},
        )
        for i, trace_id in enumerate(trace_ids)
    ]
    for i in range(0, turns, 100):
        assert server.export(request(spans[i : i + 100]).SerializeToString()).status_code == 200
    return trace_ids


def test_session_detail_pages_its_turns(server_on_each_store: ProjectClient) -> None:
    server = server_on_each_store
    session_id = f"long-{uuid.uuid4().hex[:8]}"
    order = _send_session(server, session_id, TURNS)
    path = f"/api/v1/sessions/{session_id}"

    first = server.get(path)
    assert first["trace_count"] == TURNS
    assert [t["trace_id"] for t in first["traces"]] == order[:100]
    assert first["first_turn"] == 1 and first["next_cursor"]

    seen, firsts, cursor = [], [], None
    while True:
        page = server.get(path, limit=60, cursor=cursor)
        assert page["trace_count"] == TURNS
        seen += [t["trace_id"] for t in page["traces"]]
        firsts.append(page["first_turn"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == order
    assert firsts == [1, 61, 121, 181]

    at = server.get(path, turn=200, limit=10)
    assert at["first_turn"] == 200
    assert [t["trace_id"] for t in at["traces"]] == order[199:209]
    whole = server.get(path, limit=1000)
    assert [t["trace_id"] for t in whole["traces"]] == order and whole["next_cursor"] is None
    assert server.get(path, limit=0)["traces"] == []

    # Another session's cursor, the cursor with a first turn, a page too large: 4xx.
    other_id = f"other-{uuid.uuid4().hex[:8]}"
    _send_session(server, other_id, 3)
    refused = [
        (f"/api/v1/sessions/{other_id}", {"cursor": first["next_cursor"]}),
        (path, {"cursor": first["next_cursor"], "turn": 3}),
        (path, {"cursor": "garbage"}),
        (path, {"limit": 1001}),
        (path, {"limit": -1}),
        (path, {"turn": 0}),
    ]
    for where, params in refused:
        response = server.http.get(where, params=params)
        assert 400 <= response.status_code < 500, (params, response.text)
        assert "error" in response.json()
    assert server.http.get(path, params={"cursor": first["next_cursor"]}).status_code == 200


def test_a_cursor_of_another_project_is_refused(server: ProjectClient, threadline_process) -> None:
    session_id = f"twice-{uuid.uuid4().hex[:8]}"
    _send_session(server, session_id, 5)
    other = ProjectClient(
        server.base_url, threadline_process.new_key(f"p-{uuid.uuid4().hex[:6]}"), threadline_process
    )
    try:
        _send_session(other, session_id, 5)
        cursor = server.get(f"/api/v1/sessions/{session_id}", limit=2)["next_cursor"]
        response = other.http.get(f"/api/v1/sessions/{session_id}", params={"cursor": cursor})
        assert response.status_code == 400 and "cursor" in response.json()["error"]
    finally:
        other.http.close()


def test_openapi_documents_the_page(server: ProjectClient) -> None:
    spec = httpx.get(server.base_url + "/openapi.json").json()
    operation = spec["paths"]["/api/v1/sessions/{session_id}"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert params["limit"]["schema"]["default"] == 100
    assert params["limit"]["schema"]["maximum"] == 1000
    assert {"cursor", "turn"} <= params.keys()
    detail = spec["components"]["schemas"]["SessionDetail"]["properties"]
    assert {"first_turn", "next_cursor", "traces"} <= detail.keys()
