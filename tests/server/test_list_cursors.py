"""A list's cursor reads on only in the list that made it, through the real server's
JSON API on SQLite and on ClickHouse (chDB): read by another list or sort, or with other
filters or search, it is a 400 naming the cursor (a score sort's cursor read by another
score sort: ``test_score_sort_api.py``)."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import ProjectClient
from tests.server.test_score_sort_api import post_score, send_sessions


def test_a_cursor_of_another_list_or_plain_sort_is_a_400(server_on_each_store: ProjectClient):
    tag = uuid.uuid4().hex[:8]
    send_sessions(server_on_each_store, tag)
    for i in (1, 2):
        post_score(server_on_each_store, name="stars", value=i, session_id=f"{tag}-{i}")
    lists = {
        f"sessions {sort}": ("/api/v1/sessions", {"sort": sort, "q": tag, "window": "all"})
        for sort in ("last_activity", "start", "duration", "cost", "tokens", "context")
    }
    lists["sessions relevance"] = (
        "/api/v1/sessions",
        {"sort": "relevance", "q": tag, "window": "all"},
    )
    lists["traces"] = ("/api/v1/traces", {"window": "all"})
    lists["scores"] = ("/api/v1/scores", {"name": "stars"})
    made = {}
    for name, (path, params) in lists.items():
        page = server_on_each_store.get(path, limit=1, **params)
        assert page["next_cursor"] is not None, name
        made[name] = page["next_cursor"]
    for made_by, cursor in made.items():
        for name, (path, params) in lists.items():
            query = {"limit": 1, "cursor": cursor, **params}
            response = server_on_each_store.http.get(path, params=query)
            if name == made_by:
                assert response.status_code == 200, (made_by, response.text)
            else:
                assert response.status_code == 400, (made_by, name, response.text)
                assert "cursor" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "sort"),
    [
        ("/api/v1/sessions", "last_activity"),
        ("/api/v1/sessions", "cost"),
        ("/api/v1/sessions", "score:stars"),
        ("/api/v1/traces", "time"),
        ("/api/v1/traces", "score:stars"),
    ],
)
def test_a_cursor_reused_with_other_filters_is_a_400(
    server_on_each_store: ProjectClient, path: str, sort: str
):
    """A cursor starts its list after a row of the list that made it: with other
    filters or another search, that skipped the other list's rows before it."""
    tag = uuid.uuid4().hex[:8]
    send_sessions(server_on_each_store, tag)
    for i in (1, 2, 3):
        post_score(server_on_each_store, name="stars", value=i, session_id=f"{tag}-{i}")
    # The project's traces are all this test's (a search finds a trace by its id only).
    same = {"sort": sort, "filter": "spans>=1", "window": "all"}
    if path.endswith("/sessions"):
        same["q"] = tag
    first = server_on_each_store.get(path, limit=2, **same)
    assert first["next_cursor"] is not None
    cursor = first["next_cursor"]
    # The next page: the same filters, another page size or time window read on.
    for other in ({}, {"limit": "3"}, {"window": "30d"}, {"start": "2026-01-01T00:00:00Z"}):
        params = {**same, "limit": "2", "cursor": cursor, **other}
        assert server_on_each_store.http.get(path, params=params).status_code == 200, (other, path)
    for other in (
        {"q": tag + "-1"},
        {"session_id": tag + "-1"} if path.endswith("/traces") else {"min_context_use": "0.1"},
        {"filter": "spans>=2"},
        {"filter": ["spans>=1", "errors=0"]},
        {"status": "ok"},
        {"user_id": "someone"},
        {"tag": "vip"},
        {"metadata": "plan=pro"},
        {"score": "stars>=1"},
        {"missing_score": "other"},
    ):
        params = {**same, "limit": "2", "cursor": cursor, **other}
        response = server_on_each_store.http.get(path, params=params)
        assert response.status_code == 400, (other, path, response.text)
        assert "filter" in response.json()["error"]


@pytest.mark.parametrize("path", ["/api/v1/sessions", "/api/v1/traces"])
def test_a_cursor_reads_on_with_its_filters_in_another_order(
    server_on_each_store: ProjectClient, path: str
):
    """Every numeric and score filter must hold, whatever their order: the same ones
    given in another order are the same list, and its cursor reads on (it was a 400)."""
    tag = uuid.uuid4().hex[:8]
    send_sessions(server_on_each_store, tag)
    first = [("filter", "spans>0"), ("filter", "spans<1000"), ("missing_score", "stars")]
    first += [("missing_score", "nope"), ("window", "all"), ("limit", "1")]
    page = server_on_each_store.http.get(path, params=first)
    assert page.status_code == 200, page.text
    cursor = page.json()["next_cursor"]
    assert cursor is not None
    reordered = [first[1], first[0], first[3], first[2], *first[4:], ("cursor", cursor)]
    assert server_on_each_store.http.get(path, params=reordered).status_code == 200
    # One metadata key given two values was read as the last alone: a 400.
    twice = [("metadata", "k=1"), ("metadata", "k=2"), ("window", "all")]
    refused = server_on_each_store.http.get(path, params=twice)
    assert refused.status_code == 400 and "'k' given two values" in refused.text, refused.text
