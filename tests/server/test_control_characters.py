"""Control characters (newline, ESC, DEL, C1, tab) and bidirectional overrides in the
names and ids a client types are refused with a 4xx saying so, as NUL is; in OTLP ingest
they become U+FFFD in the span's session id, user id and tags, so the span is kept. A
read that names an id holding a NUL is a 400, not an empty answer that hides it."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.integrations.fake_judge import UNREACHABLE_JUDGE
from threadline.server.web.auth import COOKIE

# A control of each kind, and an override that makes "txt.exe" show as "exe.txt".
REFUSED = {
    "newline": ("a\nb", "control character (U+000A)"),
    "tab": ("a\tb", "control character (U+0009)"),
    "escape": ("a\x1b[31mb", "control character (U+001B)"),
    "delete": ("a\x7fb", "control character (U+007F)"),
    "c1": ("a\x85b", "control character (U+0085)"),
    "override": ("a\u202etxt.exe", "bidirectional formatting character (U+202E)"),
    "isolate": ("a\u2066b", "bidirectional formatting character (U+2066)"),
}


def _says(response: httpx.Response, status: int, why: str) -> None:
    assert response.status_code == status, response.text
    assert why in response.text, response.text


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_control_characters_in_typed_names_are_a_4xx_saying_so(server: Any, kind: str) -> None:
    bad, why = REFUSED[kind]
    sid = f"s-{uuid.uuid4().hex[:8]}"
    server.send_span({"session.id": sid})
    score = {"name": "x", "value": 1, "session_id": sid}
    for field in ({"name": bad}, {"session_id": bad}, {"id": bad}, {"author": bad}):
        _says(server.http.post("/api/v1/scores", json={**score, **field}), 422, why)
    _says(server.http.post("/api/v1/scores", json={**score, "value": bad}), 422, why)
    config = {"name": bad, "data_type": "boolean"}
    _says(server.http.put("/api/v1/score-configs/" + quote(bad, safe=""), json=config), 422, why)
    note = {"session_id": sid, "body": "a body\nmay hold lines", "author": bad}
    _says(server.http.post("/api/v1/notes", json=note), 422, why)
    evaluator = {
        "name": bad,
        "prompt": "p",
        "judge": UNREACHABLE_JUDGE,
        "score": {"name": "judged", "data_type": "boolean"},
    }
    _says(server.http.post("/api/v1/evaluators", json=evaluator), 422, why)
    judge = {**UNREACHABLE_JUDGE, "model": bad}  # sent to the judge, printed by the CLI
    _says(
        server.http.post("/api/v1/evaluators", json={**evaluator, "name": "ok", "judge": judge}),
        422,
        why,
    )
    basic = "Basic " + base64.b64encode(f"pk:{server.api_key}".encode()).decode()
    _says(
        httpx.post(
            server.base_url + "/api/public/scores",
            json=[{"name": bad, "value": 1, "sessionId": sid}],
            headers={"Authorization": basic},
        ),
        207,
        why,
    )
    with httpx.Client(base_url=server.base_url, cookies={COOKIE: server.api_key}) as web:
        origin = {"Origin": server.base_url}
        form = {"session_id": sid, "name": bad, "value": "1"}
        _says(web.post("/ui/scores", data=form, headers=origin), 400, why)
        form = {"session_id": sid, "body": "b", "author": bad}
        _says(web.post("/ui/notes", data=form, headers=origin), 400, why)
        tagged = {
            "name": "tagged",
            "prompt": "p",
            "base_url": "http://127.0.0.1:9/v1",
            "model": "m",
            "score_type": "boolean",
            "tags": f"ok, {bad}",
        }
        answer = web.post("/evaluators", data=tagged, headers=origin)
        assert answer.status_code in (400, 422) and why in answer.text, answer.text
        modelled = {**tagged, "tags": "ok", "model": bad}
        answer = web.post("/evaluators", data=modelled, headers=origin)
        assert answer.status_code in (400, 422) and why in answer.text, answer.text
    assert server.get("/api/v1/scores", session_id=sid)["items"] == []
    assert server.get("/api/v1/score-configs")["items"] == []
    assert server.get("/api/v1/notes", session_id=sid)["items"] == []
    assert server.get("/api/v1/evaluators")["items"] == []


def test_names_may_hold_what_is_not_a_control(server: Any) -> None:
    # Right-to-left text with its marks, accents, emoji joined by a zero-width joiner.
    for name in ("שלום\u200fx", "café", "\U0001f469\u200d\U0001f4bb", "a b"):
        answer = server.http.put(
            "/api/v1/score-configs/" + quote(name, safe=""),
            json={"name": name, "data_type": "boolean"},
        )
        assert answer.status_code == 200, (name, answer.text)


def test_control_characters_in_an_otlp_session_id_user_or_tag_keep_the_span(server: Any) -> None:
    sent_id = f"chat{uuid.uuid4().hex[:6]}\n\x1b[2J\u202ex"
    stored_id = sent_id.replace("\n", "\ufffd").replace("\x1b", "\ufffd")
    stored_id = stored_id.replace("\u202e", "\ufffd")
    trace_id = server.send_span(
        {"session.id": sent_id, "user.id": "u\tv\x85", "tag.tags": ["t\rw", "plain", "café"]}
    )
    session = server.get("/api/v1/sessions/" + stored_id)
    assert [t["trace_id"] for t in session["traces"]] == [trace_id]
    trace = server.get(f"/api/v1/traces/{trace_id}")
    assert trace["session_id"] == stored_id and trace["user_id"] == "u\ufffdv\ufffd"
    assert sorted(trace["tags"]) == ["café", "plain", "t\ufffdw"]
    (only,) = trace["spans"]
    assert only["attributes"]["session.id"] == sent_id  # the attribute is kept as sent
    scored = server.http.post(
        "/api/v1/scores", json={"name": "x", "value": 1, "session_id": stored_id}
    )
    assert scored.status_code == 200, scored.text


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/traces", "session_id"),
        ("/api/v1/sessions", "user_id"),
        ("/api/v1/scores", "session_id"),
        ("/api/v1/notes", "session_id"),
        ("/api/v1/evaluation-runs", "evaluator"),
        ("/api/v1/session-search", "session_id"),
        ("/api/v1/export/traces", "session_id"),
    ],
)
def test_a_read_naming_an_id_with_a_nul_is_a_400(server: Any, path: str, name: str) -> None:
    params = {name: "a\x00b", **({"q": "x"} if "search" in path else {})}
    answer = server.http.get(path, params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == f"query parameter {name!r} holds a NUL character (U+0000)"


def test_a_page_naming_an_id_with_a_nul_is_a_400_page(server: Any) -> None:
    html = {"Accept": "text/html"}
    with httpx.Client(base_url=server.base_url, cookies={COOKIE: server.api_key}) as web:
        answer = web.get("/traces", params={"session_id": "a\x00b"}, headers=html)
        assert answer.status_code == 400 and "text/html" in answer.headers["content-type"]
        assert "holds a NUL character" in answer.text
        answer = web.get("/traces", params={"session_id": "a\x00b"}, headers={"HX-Request": "1"})
        assert answer.status_code == 400 and "NUL character" in answer.json()["error"]


def _json(value: object) -> dict[str, Any]:
    """A JSON body as a client's encoder writes it: a lone surrogate as its ``\\ud800``
    escape (``ensure_ascii``), which Python's decoder turns back into the lone surrogate."""
    return {"content": json.dumps(value), "headers": {"Content-Type": "application/json"}}


def test_a_lone_surrogate_in_a_written_name_or_text_is_a_4xx_saying_so(server: Any) -> None:
    # UTF-8 cannot encode a lone surrogate: a store given one failed the write (a 500).
    sid = f"s-{uuid.uuid4().hex[:8]}"
    server.send_span({"session.id": sid})
    score = {"name": "x", "value": 1, "session_id": sid}
    for field in ({"comment": "a\ud800b"}, {"session_id": "s\ud800"}, {"name": "\ud800"}):
        for body in ({**score, **field}, [{**score, **field}]):
            answer = server.http.post("/api/v1/scores", **_json(body))
            # Pydantic refuses some ("unable to parse raw data as a unicode string").
            assert answer.status_code == 422, (field, answer.text)
            assert "surrogate" in answer.text or "unicode" in answer.text, answer.text
    basic = "Basic " + base64.b64encode(f"pk:{server.api_key}".encode()).decode()
    answer = httpx.post(
        server.base_url + "/api/public/scores",
        content=json.dumps([{"name": "x", "value": 1, "sessionId": sid, "comment": "\ud800"}]),
        headers={"Authorization": basic, "Content-Type": "application/json"},
    )
    assert answer.status_code in (207, 400, 422) and "surrogate" in answer.text, answer.text
    assert server.get("/api/v1/scores", session_id=sid)["items"] == []
