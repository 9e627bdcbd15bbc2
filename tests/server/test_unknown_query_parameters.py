"""The JSON API answers 400 to a query parameter its route does not take, naming it: a
misspelt filter used to come back as an unfiltered list. The pages refuse them too
(``test_page_queries.py``)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(
    ("path", "known"),
    [
        ("/api/v1/sessions", {"limit": "10"}),
        ("/api/v1/traces", {"limit": "10"}),
        ("/api/v1/users", {"limit": "10"}),
        ("/api/v1/metrics", {"start": "2026-09-20T00:00:00Z"}),
        ("/api/v1/export/sessions", {"format": "jsonl"}),
        ("/api/v1/export/traces", {"format": "jsonl"}),
        ("/api/v1/scores", {"session_id": "s"}),
        ("/api/v1/notes", {"session_id": "s"}),
        ("/api/v1/evaluation-runs", {"session_id": "s"}),
        ("/api/v1/score-configs", {}),
        ("/api/v1/settings/retention", {}),
    ],
)
def test_an_unknown_query_parameter_is_a_400_naming_it(
    server: Any, path: str, known: dict[str, str]
) -> None:
    refused = server.http.get(path, params={**known, "turns": ">5"})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error.startswith("unknown query parameter 'turns':"), error
    for name in known:
        assert name in error.split("takes", 1)[1], error
    assert server.http.get(path, params=known).status_code == 200


def test_a_misspelt_filter_is_refused_not_ignored(server: Any) -> None:
    refused = server.http.get("/api/v1/scores", params={"sesion_id": "s"})
    assert refused.status_code == 400
    assert "'sesion_id'" in refused.json()["error"] and "session_id" in refused.json()["error"]
    # A route that takes no query parameter says so; a write route refuses them too.
    refused = server.http.get("/api/v1/score-configs", params={"limit": "5"})
    assert refused.status_code == 400 and refused.json()["error"].endswith("takes none")
    refused = server.http.post("/api/v1/notes", params={"dry_run": "1"}, json={})
    assert refused.status_code == 400, refused.text


def test_the_filters_a_list_declares_are_known(server: Any) -> None:
    params = {"filter": "turns>5", "user_id": "ana", "metadata": "env=prod", "q": "x"}
    assert server.http.get("/api/v1/sessions", params=params).status_code == 200
    search = server.http.get("/api/v1/session-search", params={"session_id": "s", "q": "x"})
    assert search.status_code in (200, 404), search.text
    assert "unknown" not in search.text
    bulk = server.http.post(
        "/api/v1/sessions/delete", params={"user_id": "nobody"}, json={"dry_run": True}
    )
    assert bulk.status_code == 200 and bulk.json()["matched"] == 0, bulk.text


def test_a_single_valued_filter_given_twice_is_a_400_naming_it(server: Any) -> None:
    # FastAPI read the last: ?tag=a&tag=b was the list of tag b alone, looking like the
    # answer to both.
    server.send_span({"session.id": "tagged-twice", "tag.tags": ["a"]})
    for path in ("/api/v1/sessions", "/api/v1/traces", "/api/v1/export/sessions"):
        refused = server.http.get(path, params=[("tag", "b"), ("tag", "a")])
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"].startswith("query parameter 'tag' given more than once")
    refused = server.http.get("/api/v1/users", params=[("q", "x"), ("limit", "1"), ("q", "y")])
    assert refused.status_code == 400 and "'q'" in refused.json()["error"], refused.text
    # A repeatable one still takes each value (all must match).
    both = [("metadata", "a=1"), ("metadata", "b=2"), ("window", "all")]
    assert server.http.get("/api/v1/sessions", params=both).status_code == 200
    found = server.get("/api/v1/sessions", tag="a", window="all")["items"]
    assert [s["session_id"] for s in found] == ["tagged-twice"]
