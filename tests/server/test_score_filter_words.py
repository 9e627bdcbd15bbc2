"""A score filter says a good/bad score the way the UI shows it: `resolved = good`
(or bad, yes, no) finds what `resolved = true` finds, in the lists, the exports and
the web pages; a label compared with a good/bad or a numeric name, which no row could
match, is a 400 that says what to write; a categorical name keeps its labels, "good"
too."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.conftest import ProjectClient
from threadline.server.web.auth import COOKIE


def _sessions(server: ProjectClient, score: str) -> httpx.Response:
    return server.http.get("/api/v1/sessions", params={"score": score, "window": "all"})


def _ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return sorted(item["session_id"] for item in answer.json()["items"])


def _scenario(server: ProjectClient) -> tuple[str, str, str]:
    well, badly = f"s-well-{uuid.uuid4().hex[:6]}", f"s-badly-{uuid.uuid4().hex[:6]}"
    trace = server.send_span({"session.id": well})
    server.send_span({"session.id": badly})
    scores = [
        {"name": "resolved", "value": True, "session_id": well},
        {"name": "resolved", "value": False, "session_id": badly},
        {"name": "quality", "value": "good", "session_id": well},
        {"name": "quality", "value": "bad", "session_id": badly},
        {"name": "helpful", "value": 4, "session_id": well},
        {"name": "correct", "value": False, "trace_id": trace, "session_id": well},
    ]
    written = server.http.post("/api/v1/scores", json=scores)
    assert written.status_code in (200, 201), written.text
    return well, badly, trace


def test_good_and_bad_read_as_true_and_false_on_a_good_bad_name(server: ProjectClient) -> None:
    well, badly, trace = _scenario(server)
    for word in ("good", "Good", "yes", "true"):
        assert _ids(_sessions(server, f"resolved = {word}")) == [well], word
    for word in ("bad", "no", "false"):
        assert _ids(_sessions(server, f"resolved={word}")) == [badly], word
    assert _ids(_sessions(server, "resolved != good")) == [badly]
    # A categorical name keeps "good" as a label.
    assert _ids(_sessions(server, "quality=good")) == [well]
    assert _ids(_sessions(server, "quality!=good")) == [badly]
    # Traces, and an export, read them alike.
    traces = server.http.get("/api/v1/traces", params={"score": "correct=bad", "window": "all"})
    assert [t["trace_id"] for t in traces.json()["items"]] == [trace]
    exported = server.http.get(
        "/api/v1/export/sessions", params={"score": "resolved=bad", "window": "all"}
    )
    assert exported.status_code == 200 and badly in exported.text and well not in exported.text


def test_a_label_no_row_could_match_says_what_to_write(server: ProjectClient) -> None:
    _scenario(server)
    refused = _sessions(server, "resolved=maybe")
    assert refused.status_code == 400
    assert refused.json()["error"] == (
        "score filter 'resolved=maybe': 'resolved' is a good/bad score: compare it with"
        " true or false (or good, bad, yes, no)"
    )
    refused = _sessions(server, "helpful=great")
    assert refused.status_code == 400
    assert "'helpful' is a numeric score: compare it with a number" in refused.json()["error"]
    # A name with no score yet has no type: nothing matches, and nothing is refused.
    assert _ids(_sessions(server, "never-written=good")) == []


def test_the_sessions_page_reads_them_alike(server: ProjectClient) -> None:
    well, _, _ = _scenario(server)
    with httpx.Client(
        base_url=server.base_url, cookies={COOKIE: server.api_key}, timeout=30
    ) as web:
        page = web.get("/sessions", params={"score": "resolved = good", "range": "all"})
        assert page.status_code == 200
        assert re.findall(r'<tr data-id="([^"]+)" class="session-row"', page.text) == [well]
        refused = web.get("/sessions", params={"score": "resolved = maybe"})
        assert refused.status_code == 400
        assert "is a good/bad score: compare it with true or false" in refused.text
