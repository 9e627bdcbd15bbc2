"""NUL characters in the names and ids a client types are refused with a 4xx saying so
(JSON API, Langfuse-compatible route, forms); in OTLP ingest they become U+FFFD in the
span's session id, user id and tags, so the span is kept and its session addressable."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx

from tests.integrations.fake_judge import UNREACHABLE_JUDGE
from threadline.server.web.auth import COOKIE

NUL = "a\u0000b"


def _says_nul(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert "NUL character" in response.text, response.text


def test_nul_in_typed_names_and_ids_is_a_4xx_saying_so(server: Any) -> None:
    sid = f"s-{uuid.uuid4().hex[:8]}"
    server.send_span({"session.id": sid})
    score = {"name": "x", "value": 1, "session_id": sid}
    for bad in (
        {"name": NUL},
        {"session_id": NUL},
        {"id": NUL},
        {"author": NUL},
        {"value": NUL},  # a label
    ):
        _says_nul(server.http.post("/api/v1/scores", json={**score, **bad}), 422)
    for config in (
        {"name": NUL, "data_type": "boolean"},
        {"name": "c", "data_type": "categorical", "labels": ["ok", NUL]},
    ):
        _says_nul(server.http.put("/api/v1/score-configs/c", json=config), 422)
    _says_nul(server.http.post("/api/v1/notes", json={"session_id": NUL, "body": "b"}), 422)
    evaluator = {
        "name": "judged",
        "prompt": "p",
        "judge": UNREACHABLE_JUDGE,
        "score": {"name": "judged", "data_type": "boolean"},
    }
    for bad in (
        {"name": NUL, "score": {"name": NUL, "data_type": "boolean"}},
        {"filter": {"tags": [NUL]}},
        {"filter": {"user_id": NUL}},
        {"filter": {"metadata": {NUL: "v"}}},
    ):
        _says_nul(server.http.post("/api/v1/evaluators", json={**evaluator, **bad}), 422)
    basic = "Basic " + base64.b64encode(f"pk:{server.api_key}".encode()).decode()
    langfuse = [{"name": NUL, "value": 1, "sessionId": sid}]
    _says_nul(
        httpx.post(
            server.base_url + "/api/public/scores", json=langfuse, headers={"Authorization": basic}
        ),
        207,  # Langfuse's answer: each score accepted or refused, with the reason
    )
    with httpx.Client(base_url=server.base_url, cookies={COOKIE: server.api_key}) as web:
        form = {"session_id": sid, "name": NUL, "value": "1"}
        _says_nul(web.post("/ui/scores", data=form, headers={"Origin": server.base_url}), 400)
    assert server.get("/api/v1/scores", session_id=sid)["items"] == []
    assert server.get("/api/v1/score-configs")["items"] == []


def test_nul_in_an_otlp_session_id_user_or_tag_keeps_the_span(server: Any) -> None:
    sent_id = f"chat{uuid.uuid4().hex[:6]}\u0000x"
    stored_id = sent_id.replace("\u0000", "\ufffd")
    trace_id = server.send_span(
        {"session.id": sent_id, "user.id": "u\u0000v", "tag.tags": ["t\u0000w", "plain"]}
    )
    session = server.get(f"/api/v1/sessions/{stored_id}")
    assert [t["trace_id"] for t in session["traces"]] == [trace_id]
    trace = server.get(f"/api/v1/traces/{trace_id}")
    assert trace["session_id"] == stored_id and trace["user_id"] == "u\ufffdv"
    assert sorted(trace["tags"]) == ["plain", "t\ufffdw"]
    # The attribute itself is kept as sent.
    (only,) = trace["spans"]
    assert only["attributes"]["session.id"] == sent_id
    # The session can be scored by the id it is shown under.
    scored = server.http.post(
        "/api/v1/scores", json={"name": "x", "value": 1, "session_id": stored_id}
    )
    assert scored.status_code == 200, scored.text


def test_names_with_nul_stored_before_still_read(server: Any) -> None:
    """A store written by a version that let NUL through: its lists still answer."""
    from threadline.server.evaluation.model import EvaluatorIn
    from threadline.server.model import STORED, ScoreConfig
    from threadline.server.store.sqlite import SQLiteStore

    store = SQLiteStore(server.process.data_dir / "threadline.db")
    try:
        project = store.create_project(f"old-{uuid.uuid4().hex[:6]}")
        key = store.create_key(project.id)
        config = {"name": NUL, "data_type": "categorical", "labels": [NUL]}
        store.put_score_config(project.id, ScoreConfig.model_validate(config, context=STORED))
        evaluator = {
            "name": NUL,
            "prompt": "p",
            "judge": UNREACHABLE_JUDGE,
            "score": {"name": NUL, "data_type": "boolean"},
            "filter": {"tags": [NUL]},
        }
        store.put_evaluator(project.id, EvaluatorIn.model_validate(evaluator, context=STORED))
    finally:
        store.close()
    auth = {"Authorization": f"Bearer {key}"}
    configs = httpx.get(server.base_url + "/api/v1/score-configs", headers=auth)
    assert configs.status_code == 200 and configs.json()["items"][0]["name"] == NUL
    evaluators = httpx.get(server.base_url + "/api/v1/evaluators", headers=auth)
    assert evaluators.status_code == 200 and evaluators.json()["items"][0]["name"] == NUL
