"""The JSON API's lists carry a time window: the last 7 days unless the request names
its times (start, end), another window, or all time; a session's traces are all
listed whatever the window; the export follows the list."""

from __future__ import annotations

import json
import time

from tests.otlp import new_span_id, new_trace_id, span

SECOND = 10**9
DAY = 86_400 * SECOND


def _turn(server, session_id: str, user_id: str, start_ns: int) -> str:
    trace_id = new_trace_id()
    root = span(
        trace_id,
        new_span_id(),
        name="turn",
        start_ns=start_ns,
        end_ns=start_ns + SECOND,
        attributes={"threadline.session.id": session_id, "threadline.user.id": user_id},
    )
    server.send([root])
    return trace_id


def _ids(server, path: str, key: str, **params) -> list[str]:
    return [item[key] for item in server.get(path, **params)["items"]]


def test_lists_default_to_the_last_seven_days(server):
    now = time.time_ns()
    old_trace = _turn(server, "old-session", "old-user", now - 10 * DAY)
    new_trace = _turn(server, "new-session", "new-user", now - 3600 * SECOND)
    both = ["new-session", "old-session"]

    assert _ids(server, "/api/v1/sessions", "session_id") == ["new-session"]
    assert _ids(server, "/api/v1/sessions", "session_id", window="24h") == ["new-session"]
    assert _ids(server, "/api/v1/sessions", "session_id", window="30d") == both
    assert _ids(server, "/api/v1/sessions", "session_id", window="all") == both
    assert _ids(server, "/api/v1/sessions", "session_id", window="15m") == []
    # Times asked for win over the window.
    old_start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((now - 11 * DAY) / SECOND))
    assert _ids(server, "/api/v1/sessions", "session_id", start=old_start) == both

    assert _ids(server, "/api/v1/traces", "trace_id") == [new_trace]
    assert _ids(server, "/api/v1/traces", "trace_id", window="all") == [new_trace, old_trace]
    # A session's traces: all of them.
    assert _ids(server, "/api/v1/traces", "trace_id", session_id="old-session") == [old_trace]

    assert _ids(server, "/api/v1/users", "user_id") == ["new-user"]
    assert set(_ids(server, "/api/v1/users", "user_id", window="all")) == {"new-user", "old-user"}

    exported = server.http.get("/api/v1/export/sessions", params={"format": "jsonl"})
    assert [json.loads(line)["session_id"] for line in exported.text.splitlines()] == [
        "new-session"
    ]
    everything = server.http.get(
        "/api/v1/export/sessions", params={"format": "jsonl", "window": "all"}
    )
    assert len(everything.text.splitlines()) == 2


def test_an_unknown_window_is_a_clear_400(server):
    for path in ("/api/v1/sessions", "/api/v1/traces", "/api/v1/users"):
        response = server.http.get(path, params={"window": "forever"})
        assert 400 <= response.status_code < 500, response.text
        assert "error" in response.json()


def test_the_window_is_documented(server):
    spec = server.http.get("/openapi.json").json()
    for path in ("/api/v1/sessions", "/api/v1/traces", "/api/v1/users"):
        [window] = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "window"]
        assert window["schema"]["default"] == "7d"
        assert "all" in window["schema"]["enum"]
