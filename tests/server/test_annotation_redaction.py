"""Redaction of what is written beside spans: a project's rules apply to the comment of
every score and the body of every note, whichever route sends it (the JSON API,
Langfuse's score and ingestion routes, the web UI's forms), before it is stored; a
project without rules keeps them as sent. (The LLM judges' comments and run reasons:
tests/server/test_evaluations.py.)"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx

from tests.otlp import new_span_id, new_trace_id, request, span
from tests.server.test_redaction import ALL_RULES, PRIVATE, REDACTED, TEXT, _set_rules
from threadline.server.web.auth import COOKIE


def _session(server: Any) -> tuple[str, str]:
    session_id, trace_id = f"s-{uuid.uuid4().hex[:8]}", new_trace_id()
    now = time.time_ns()
    body = request(
        [
            span(
                trace_id,
                new_span_id(),
                name="turn",
                start_ns=now - 10**9,
                end_ns=now,
                attributes={"threadline.session.id": session_id},
            )
        ]
    )
    assert server.export(body.SerializeToString()).status_code == 200
    return session_id, trace_id


def _annotate_every_way(server: Any, session_id: str, trace_id: str) -> None:
    """One score (or note) with ``TEXT`` through each route that takes free text."""
    target = {"session_id": session_id}
    sent = server.http.post(
        "/api/v1/scores", json={**target, "name": "api", "value": 1, "comment": TEXT}
    )
    assert sent.status_code == 200, sent.text
    basic = {"Authorization": "Basic " + base64.b64encode(f"pk:{server.api_key}".encode()).decode()}
    base = server.base_url
    langfuse = [{"name": "lf", "value": 1, "sessionId": session_id, "comment": TEXT}]
    sent = httpx.post(base + "/api/public/scores", json=langfuse, headers=basic)
    assert sent.status_code == 202, sent.text
    event = {
        "id": "e1",
        "type": "score-create",
        "timestamp": "2026-12-05T10:00:00.000Z",
        "body": {"name": "lf-batch", "value": 1, "traceId": trace_id, "comment": TEXT},
    }
    sent = httpx.post(base + "/api/public/ingestion", json={"batch": [event]}, headers=basic)
    assert sent.status_code == 207 and sent.json()["errors"] == [], sent.text
    sent = server.http.post("/api/v1/notes", json={**target, "body": TEXT})
    assert sent.status_code == 201, sent.text
    with httpx.Client(base_url=base, cookies={COOKIE: server.api_key}) as web:
        origin = {"Origin": base}
        form = {**target, "name": "ui", "value": "1", "comment": TEXT}
        assert web.post("/ui/scores", data=form, headers=origin).status_code == 303
        note = {**target, "body": TEXT}
        assert web.post("/ui/notes", data=note, headers=origin).status_code == 303


def _texts(server: Any, session_id: str, trace_id: str) -> tuple[list[str], list[str]]:
    scores = server.get("/api/v1/scores", session_id=session_id, limit=50)["items"]
    scores += server.get("/api/v1/scores", trace_id=trace_id, limit=50)["items"]
    notes = server.get("/api/v1/notes", session_id=session_id)["items"]
    by_name = {s["name"]: s["comment"] for s in scores}
    assert set(by_name) == {"api", "lf", "lf-batch", "ui"}, by_name
    return [by_name[n] for n in sorted(by_name)], [n["body"] for n in notes]


def test_score_comments_and_notes_are_redacted_on_every_route(server) -> None:
    _set_rules(server, ALL_RULES)
    session_id, trace_id = _session(server)
    _annotate_every_way(server, session_id, trace_id)
    comments, notes = _texts(server, session_id, trace_id)
    assert comments == [REDACTED] * 4
    assert notes == [REDACTED] * 2
    # Nor in any page or list that shows them.
    with httpx.Client(base_url=server.base_url, cookies={COOKIE: server.api_key}) as web:
        shown = web.get(f"/sessions/{session_id}").text + json.dumps(
            server.get("/api/v1/scores", limit=100)
        )
    for private in PRIVATE:
        assert private not in shown, private


def test_without_rules_comments_and_notes_are_kept_as_sent(server) -> None:
    session_id, trace_id = _session(server)
    _annotate_every_way(server, session_id, trace_id)
    comments, notes = _texts(server, session_id, trace_id)
    assert comments == [TEXT] * 4
    assert notes == [TEXT] * 2


def test_a_score_sent_again_stays_one_score(server) -> None:
    # A retry of a redacted score equals the stored one (redaction is the same each
    # time), so it is still one score, its comment redacted.
    _set_rules(server, ALL_RULES)
    session_id, _ = _session(server)
    score = {"id": "retry-1", "session_id": session_id, "name": "q", "value": 2, "comment": TEXT}
    for _ in range(2):
        assert server.http.post("/api/v1/scores", json=score).status_code == 200
    (stored,) = server.get("/api/v1/scores", session_id=session_id)["items"]
    assert stored["comment"] == REDACTED
