"""The Sessions and Traces lists sorted by a score through the real server's JSON API,
on SQLite and on ClickHouse (chDB): the order, the pages, and the 400s (other lists'
cursors: ``test_list_cursors.py``)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.conftest import ProjectClient
from tests.otlp import new_span_id, new_trace_id, span


def send_sessions(client: ProjectClient, tag: str) -> dict[str, str]:
    """Sessions ``tag-1`` .. ``tag-5``, one turn each, later ones later; their traces."""
    spans, traces = [], {}
    for i in range(1, 6):
        sid, trace_id = f"{tag}-{i}", new_trace_id()
        traces[sid] = trace_id
        spans.append(
            span(
                trace_id,
                new_span_id(),
                name=f"turn-{i}",
                start_ns=1_790_000_000_000_000_000 + i * 10**9,
                attributes={"threadline.session.id": sid},
            )
        )
    client.send(spans)
    return traces


def post_score(client: ProjectClient, **body: Any) -> None:
    response = client.http.post("/api/v1/scores", json=body)
    assert response.status_code == 200, response.text


def _walk(client: ProjectClient, path: str, key: str, **params: Any) -> list[str]:
    seen, cursor = [], None
    while True:
        page = client.get(path, limit=2, cursor=cursor, window="all", **params)
        seen += [item[key] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def test_lists_sort_by_a_score(server_on_each_store: ProjectClient):
    tag = uuid.uuid4().hex[:8]
    traces = send_sessions(server_on_each_store, tag)
    for i, value in ((1, 3), (2, 5), (3, 3), (4, 1)):
        post_score(server_on_each_store, name="stars", value=value, session_id=f"{tag}-{i}")
    for i, label in ((1, "b"), (2, "a"), (5, "c")):
        post_score(server_on_each_store, name="topic", value=label, session_id=f"{tag}-{i}")
    post_score(server_on_each_store, name="stars", value=2, trace_id=traces[f"{tag}-5"])
    post_score(server_on_each_store, name="stars", value=4, trace_id=traces[f"{tag}-1"])

    def sessions(**params: Any) -> list[int]:
        ids = _walk(server_on_each_store, "/api/v1/sessions", "session_id", q=tag, **params)
        return [int(s.rsplit("-", 1)[1]) for s in ids]

    assert sessions(sort="score:stars") == [2, 3, 1, 4, 5]
    assert sessions(sort="score:stars", order="desc") == [2, 3, 1, 4, 5]
    assert sessions(sort="score:stars", order="asc") == [4, 1, 3, 2, 5]
    assert sessions(sort="score_label:topic", order="asc") == [2, 1, 5, 4, 3]
    assert sessions(sort="score:stars", score="stars>=3") == [2, 3, 1]

    # The export follows the list, its sort included, through every page.
    exported = server_on_each_store.http.get(
        "/api/v1/export/sessions",
        params={"q": tag, "window": "all", "sort": "score:stars", "order": "asc"},
    )
    assert exported.status_code == 200, exported.text
    rows = [json.loads(line) for line in exported.text.splitlines() if line.strip()]
    assert [int(r["session_id"].rsplit("-", 1)[1]) for r in rows] == [4, 1, 3, 2, 5]

    by_trace = {trace: int(sid.rsplit("-", 1)[1]) for sid, trace in traces.items()}
    # (q finds a trace by its whole id only: the list holds every trace of the project.)
    listed = _walk(server_on_each_store, "/api/v1/traces", "trace_id", sort="score:stars")
    assert [by_trace[t] for t in listed if t in by_trace] == [1, 5, 4, 3, 2]


def test_a_bad_sort_is_a_400(server_on_each_store: ProjectClient):
    tag = uuid.uuid4().hex[:8]
    send_sessions(server_on_each_store, tag)
    cursor = server_on_each_store.get("/api/v1/sessions", limit=1, window="all")["next_cursor"]
    for path, params in (
        ("/api/v1/sessions", {"sort": "bogus"}),
        ("/api/v1/sessions", {"sort": "score:"}),
        ("/api/v1/sessions", {"sort": "score: "}),
        ("/api/v1/sessions", {"sort": "score:stars", "order": "sideways"}),
        ("/api/v1/sessions", {"sort": "start", "order": "asc"}),
        ("/api/v1/sessions", {"sort": "cost", "order": "desc"}),  # other sorts take none
        ("/api/v1/sessions", {"sort": "score:stars", "cursor": cursor}),
        ("/api/v1/traces", {"sort": "last_activity"}),
        ("/api/v1/traces", {"sort": "time", "order": "asc"}),
    ):
        response = server_on_each_store.http.get(path, params=params)
        assert response.status_code == 400, (params, response.text)
        assert "sort" in response.text or "cursor" in response.text or "order" in response.text


def test_the_score_sort_is_documented(server_on_each_store: ProjectClient):
    schema = httpx.get(server_on_each_store.base_url + "/openapi.json").json()
    for path in ("/api/v1/sessions", "/api/v1/traces"):
        params = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        assert "score:NAME" in params["sort"]["description"]
        assert "asc" in params["order"]["description"]


def test_a_cursor_of_another_sort_is_a_400(server_on_each_store: ProjectClient):
    tag = uuid.uuid4().hex[:8]
    send_sessions(server_on_each_store, tag)
    for i, value in ((1, 3), (2, 5), (3, 4)):
        post_score(server_on_each_store, name="stars", value=value, session_id=f"{tag}-{i}")
        post_score(server_on_each_store, name="other", value=value, session_id=f"{tag}-{i}")
        post_score(server_on_each_store, name="topic", value=f"t{value}", session_id=f"{tag}-{i}")

    def cursor(limit: int, **params: Any) -> str:
        page = server_on_each_store.get(
            "/api/v1/sessions", q=tag, limit=limit, window="all", **params
        )
        assert page["next_cursor"] is not None
        return page["next_cursor"]

    # One cursor in the scored part (after 5), one in the rest (after session 5).
    for mid in (cursor(1, sort="score:stars"), cursor(4, sort="score:stars")):
        ok = server_on_each_store.http.get(
            "/api/v1/sessions",
            params={"q": tag, "window": "all", "sort": "score:stars", "cursor": mid},
        )
        assert ok.status_code == 200, ok.text
        for other in (
            {"sort": "score:stars", "order": "asc"},
            {"sort": "score:other"},
            {"sort": "score:other", "order": "asc"},
            {"sort": "score_label:stars"},
            {"sort": "score:Stars"},
            {"sort": "last_activity"},
            {"sort": "start"},
        ):
            params = {"q": tag, "window": "all", "cursor": mid, **other}
            response = server_on_each_store.http.get("/api/v1/sessions", params=params)
            assert response.status_code == 400, (other, response.text)
            assert "cursor" in response.json()["error"]
    # Nor is a cursor of the Sessions list one of the Traces list, sorted alike.
    params = {"window": "all", "sort": "score:stars", "cursor": cursor(1, sort="score:stars")}
    assert server_on_each_store.http.get("/api/v1/traces", params=params).status_code == 400
    label_cursor = cursor(1, sort="score_label:topic")
    for other in ({"sort": "score_label:topic", "order": "asc"}, {"sort": "score:topic"}):
        params = {"q": tag, "window": "all", "cursor": label_cursor, **other}
        assert (
            server_on_each_store.http.get("/api/v1/sessions", params=params).status_code == 400
        ), other


def test_odd_score_names_sort_as_names(server_on_each_store: ProjectClient):
    """Quotes, percent signs, SQL and unicode in a sort's name are just a name; one no
    row has (another project's, or none at all) leaves the list newest first."""
    tag = uuid.uuid4().hex[:8]
    send_sessions(server_on_each_store, tag)
    odd = ('it\'s "q"', "50%_off", "a'; DROP TABLE score_rollups; --", "ünï😀", "x" * 200)
    for i, name in enumerate(odd, start=1):
        post_score(server_on_each_store, name=name, value=i, session_id=f"{tag}-{i}")
    for i, name in enumerate(odd, start=1):
        ids = _walk(
            server_on_each_store, "/api/v1/sessions", "session_id", q=tag, sort=f"score:{name}"
        )
        expected = [i] + [j for j in (5, 4, 3, 2, 1) if j != i]
        assert [int(s.rsplit("-", 1)[1]) for s in ids] == expected, name
    for name in ("%", "_", "nobody's", "stars\\", "x" * 201, "y" * 5000):
        ids = _walk(
            server_on_each_store, "/api/v1/sessions", "session_id", q=tag, sort=f"score:{name}"
        )
        assert [int(s.rsplit("-", 1)[1]) for s in ids] == [5, 4, 3, 2, 1], name
    nul = server_on_each_store.http.get("/api/v1/sessions", params={"sort": "score:a\x00b"})
    assert nul.status_code == 400
