"""Deleting sessions and traces through the real server: the JSON API, the UI's forms
(cookie and Origin checked) and ``threadline delete``."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import httpx

from tests.otlp import new_span_id, new_trace_id, span

COOKIE = "threadline_session"


def _session(server, session_id: str, turns: int = 2, user: str = "ann", **attrs) -> list[str]:
    """Send ``turns`` traces of one session (two spans each); return their trace ids."""
    spans, trace_ids = [], []
    for turn in range(turns):
        trace_id, root = new_trace_id(), new_span_id()
        trace_ids.append(trace_id)
        spans.append(
            span(
                trace_id,
                root,
                name=f"turn-{turn}",
                start_ns=1_790_000_000_000_000_000 + turn * 10**9,
                attributes={
                    "threadline.session.id": session_id,
                    "threadline.user.id": user,
                    **attrs,
                },
            )
        )
        spans.append(
            span(
                trace_id,
                new_span_id(),
                parent=root,
                name="llm",
                attributes={"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5},
            )
        )
    server.send(spans)
    return trace_ids


def test_delete_a_trace_and_a_session(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    first, second = _session(server, sid, user=f"u-{sid}")
    note = {"session_id": sid, "trace_id": first, "body": "look"}
    assert server.http.post("/api/v1/notes", json=note).status_code == 201
    score = {"name": "q", "value": 1, "trace_id": first}
    assert server.http.post("/api/v1/scores", json=score).status_code == 200

    response = server.http.delete(f"/api/v1/traces/{first.upper()}")
    assert response.status_code == 200 and response.json() == {"deleted": 1}
    assert server.http.get(f"/api/v1/traces/{first}").status_code == 404
    session = server.get(f"/api/v1/sessions/{sid}")
    assert [t["trace_id"] for t in session["traces"]] == [second]
    assert (session["trace_count"], session["span_count"], session["input_tokens"]) == (1, 2, 10)
    assert server.get("/api/v1/scores", trace_id=first)["items"] == []
    assert server.get("/api/v1/notes", session_id=sid)["items"] == []
    user = server.get("/api/v1/users", q=f"u-{sid}", window="all")["items"][0]
    assert (user["trace_count"], user["input_tokens"]) == (1, 10)
    # Gone means gone: a second delete finds nothing.
    response = server.http.delete(f"/api/v1/traces/{first}")
    assert response.status_code == 404 and "error" in response.json()

    response = server.http.delete(f"/api/v1/sessions/{sid}")
    assert response.status_code == 200 and response.json() == {"deleted": 1}
    assert server.http.get(f"/api/v1/sessions/{sid}").status_code == 404
    assert server.http.get(f"/api/v1/traces/{second}").status_code == 404
    assert server.get("/api/v1/users", q=f"u-{sid}", window="all")["items"] == []
    assert server.http.delete(f"/api/v1/sessions/{sid}").status_code == 404


def test_a_session_id_with_a_slash_is_deleted(server):
    sid = f"tenant/{uuid.uuid4().hex[:8]}"
    _session(server, sid, turns=1)
    assert server.http.delete(f"/api/v1/sessions/{sid}").status_code == 200
    assert server.http.get(f"/api/v1/sessions/{sid}").status_code == 404


def test_bulk_delete_needs_the_count_it_confirms(server):
    tag = uuid.uuid4().hex[:8]
    doomed = [f"bulk-{tag}-{i}" for i in range(3)]
    for sid in doomed:
        _session(server, sid, turns=1, **{"threadline.metadata.batch": tag})
    kept = f"kept-{tag}"
    _session(server, kept, turns=1, **{"threadline.metadata.batch": "other"})
    path = "/api/v1/sessions/delete"
    params = {"metadata": f"batch={tag}"}
    dry = server.http.post(path, params=params, json={"dry_run": True})
    assert dry.status_code == 200 and dry.json() == {"matched": 3, "deleted": 0}
    # No count, or the wrong one: nothing is deleted.
    missing = server.http.post(path, params=params, json={})
    assert missing.status_code == 400 and "confirm_count" in missing.json()["error"]
    wrong = server.http.post(path, params=params, json={"confirm_count": 2})
    assert wrong.status_code == 409 and "match 3 sessions, not 2" in wrong.json()["error"]
    assert server.get(f"/api/v1/sessions/{doomed[0]}")["trace_count"] == 1
    # Bad filters are the list's errors.
    bad = server.http.post(path, params={"metadata": "nokey"}, json={"dry_run": True})
    assert bad.status_code == 400
    # The body is JSON's own types, no other fields: "3" is not a count, "yes" not a dry run.
    for body in (
        {"confirm_count": "3"},
        {"confirm_count": 3.0},
        {"confirm_count": True},
        {"dry_run": "yes"},
        {"dry_run": 1},
        {"dry-run": True, "confirm_count": 3},
    ):
        refused = server.http.post(path, params=params, json=body)
        assert refused.status_code == 422, (body, refused.text)
    assert server.get(f"/api/v1/sessions/{doomed[0]}")["trace_count"] == 1
    done = server.http.post(path, params=params, json={"confirm_count": 3})
    assert done.status_code == 200 and done.json() == {"matched": 3, "deleted": 3}
    for sid in doomed:
        assert server.http.get(f"/api/v1/sessions/{sid}").status_code == 404
    assert server.get(f"/api/v1/sessions/{kept}")["trace_count"] == 1


def test_keys_that_cannot_read_cannot_delete(server, threadline_process):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    (trace,) = _session(server, sid, turns=1)
    ingest_key = server.new_key("ingest")
    headers = {"Authorization": f"Bearer {ingest_key}"}
    base = threadline_process.base_url
    assert httpx.delete(f"{base}/api/v1/traces/{trace}", headers=headers).status_code in (401, 403)
    assert httpx.delete(f"{base}/api/v1/traces/{trace}").status_code == 401


def test_the_ui_forms_check_the_origin(server):
    sid = f"s-{uuid.uuid4().hex[:8]}"
    first, second = _session(server, sid)
    base = server.base_url
    web = httpx.Client(base_url=base, cookies={COOKIE: server.api_key}, timeout=30)
    page = web.get(f"/traces/{first}")
    # The form that posts is behind the Delete button's question.
    assert 'action="/delete/trace"' in page.text and 'data-testid="delete-confirm"' in page.text
    # Another site's (or port's) page, an opaque origin: refused, nothing deleted.
    other_port = base.rsplit(":", 1)[0] + ":1"
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": other_port},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Referer": "https://evil.example/page"},
    ):
        refused = web.post("/delete/trace", data={"trace_id": first}, headers=headers)
        assert refused.status_code == 403, refused.text
    assert server.http.get(f"/api/v1/traces/{first}").status_code == 200
    # Signed out: to the sign-in page, nothing deleted.
    anonymous = httpx.post(
        base + "/delete/trace", data={"trace_id": first}, headers={"Origin": base}
    )
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]
    deleted = web.post("/delete/trace", data={"trace_id": first}, headers={"Origin": base})
    assert deleted.status_code == 303 and deleted.headers["location"] == f"/sessions/{sid}"
    assert server.http.get(f"/api/v1/traces/{first}").status_code == 404
    gone = web.post("/delete/trace", data={"trace_id": first}, headers={"Origin": base})
    assert gone.status_code == 404
    deleted = web.post("/delete/session", data={"session_id": sid}, headers={"Referer": base + "/"})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/sessions"
    assert server.http.get(f"/api/v1/traces/{second}").status_code == 404


def _cli(server, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "THREADLINE_BASE_URL": server.base_url,
        "THREADLINE_API_KEY": server.api_key,
    }
    return subprocess.run(
        [sys.executable, "-m", "threadline.server", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        input=stdin,
    )


def test_threadline_delete(server):
    tag = uuid.uuid4().hex[:8]
    (trace,) = _session(server, f"one-{tag}", turns=1)
    result = _cli(server, "delete", "trace", trace)
    assert result.returncode == 0 and "Deleted trace" in result.stdout, result.stderr
    assert server.http.get(f"/api/v1/traces/{trace}").status_code == 404
    result = _cli(server, "delete", "trace", trace)
    assert result.returncode != 0 and "404" in result.stderr

    _session(server, f"two-{tag}", turns=1)
    result = _cli(server, "delete", "session", f"two-{tag}")
    assert result.returncode == 0, result.stderr
    assert server.http.get(f"/api/v1/sessions/two-{tag}").status_code == 404

    for i in range(2):
        _session(server, f"many-{tag}-{i}", turns=1, user=f"user-{tag}")
    # Not a terminal and no --yes: it says how many match and deletes nothing.
    result = _cli(server, "delete", "sessions", "--filter", f"user_id=user-{tag}")
    assert result.returncode != 0 and "2 sessions match" in result.stderr
    assert server.http.get(f"/api/v1/sessions/many-{tag}-0").status_code == 200
    result = _cli(server, "delete", "sessions", "--filter", "colour=red")
    assert result.returncode != 0 and "colour=red" in result.stderr
    # The lists' numeric filters narrow it too.
    user = f"user_id=user-{tag}"
    result = _cli(server, "delete", "sessions", "--filter", user, "--filter", "filter=turns>=2")
    assert result.returncode == 0 and "No session matches" in result.stdout, result.stderr
    result = _cli(server, "delete", "sessions")
    assert result.returncode != 0 and "--all" in result.stderr
    result = _cli(server, "delete", "sessions", "--filter", f"user_id=user-{tag}", "--yes")
    assert result.returncode == 0 and "Deleted 2 sessions" in result.stdout, result.stderr
    assert server.http.get(f"/api/v1/sessions/many-{tag}-1").status_code == 404
