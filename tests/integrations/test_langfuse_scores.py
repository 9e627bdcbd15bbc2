"""Langfuse's Python SDK, unmodified, scoring traces, spans and sessions in Threadline.

The program is a Langfuse app that scores as Langfuse's docs show: ``score_current_trace``
and ``score_current_span`` inside ``@observe``, ``create_score`` with a ``session_id`` or
a ``trace_id`` afterwards. The SDK sends them, with the Basic auth of its trace export,
to ``POST /api/public/scores`` (a JSON list; see ``api/langfuse_scores.py``). The
Langfuse 3.x ingestion batch is exercised with the bodies that SDK sends.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid

import httpx
import pytest

from tests.integrations.conversation import ProgramEnv, run_program
from tests.otlp import new_span_id, new_trace_id

pytest.importorskip("langfuse")


def main() -> None:
    """The program: one scored turn in a session, then scores written after it."""
    from langfuse import get_client, observe, propagate_attributes

    env = ProgramEnv.from_environ()
    session_id = f"{env.run_id}-s"
    langfuse = get_client()
    complaints: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            complaints.append(record.getMessage())

    logging.getLogger("langfuse").addHandler(Collect(level=logging.ERROR))
    ids: dict[str, str | None] = {}

    @observe(name="answer", as_type="tool")
    def answer(question: str) -> str:
        ids["span"] = langfuse.get_current_observation_id()
        langfuse.score_current_span(name="tone", value="friendly", data_type="CATEGORICAL")
        return "shipped"

    @observe(name="support_turn")
    def support_turn(question: str) -> str:
        ids["trace"] = langfuse.get_current_trace_id()
        reply = answer(question)
        langfuse.score_current_trace(name="helpful", value=1, data_type="BOOLEAN")
        return reply

    with propagate_attributes(session_id=session_id):
        support_turn("Where is my order?")
    langfuse.create_score(
        name="resolved", value=1.0, session_id=session_id, data_type="BOOLEAN", comment="done"
    )
    langfuse.create_score(name="stars", value=4, trace_id=ids["trace"], score_id=env.run_id)
    langfuse.create_score(name="stars", value=5, trace_id=ids["trace"], score_id=env.run_id)
    langfuse.create_score(
        name="summary", value="free text", trace_id=ids["trace"], data_type="TEXT"
    )
    langfuse.flush()
    langfuse.shutdown()
    print(json.dumps({"ids": ids, "session": session_id, "complaints": complaints}))


def test_langfuse_score_calls_land_as_scores(server) -> None:
    env = ProgramEnv(server.base_url, server.api_key, "http://127.0.0.1:9/v1", uuid.uuid4().hex)
    output = run_program(
        "test_langfuse_scores",
        env,
        LANGFUSE_BASE_URL=server.base_url,
        LANGFUSE_PUBLIC_KEY="pk-lf-threadline",
        LANGFUSE_SECRET_KEY=server.api_key,
    )
    result = json.loads(output.strip().splitlines()[-1])
    trace_id, span_id = result["ids"]["trace"], result["ids"]["span"]
    session_id = result["session"]

    on_trace = {s["name"]: s for s in server.get("/api/v1/scores", trace_id=trace_id)["items"]}
    assert set(on_trace) == {"helpful", "tone", "stars"}  # the TEXT score was refused
    assert all(s["source"] == "sdk" for s in on_trace.values())
    helpful = on_trace["helpful"]
    assert (helpful["data_type"], helpful["value"], helpful["span_id"]) == ("boolean", True, None)
    tone = on_trace["tone"]
    assert (tone["data_type"], tone["value"]) == ("categorical", "friendly")
    assert tone["span_id"] == span_id
    stars = on_trace["stars"]  # written twice under one id: the second replaced the first
    assert (stars["id"], stars["data_type"], stars["value"]) == (env.run_id, "numeric", 5.0)

    # A session's scores are its own and its turns'.
    of_session = {
        s["name"]: s for s in server.get("/api/v1/scores", session_id=session_id)["items"]
    }
    assert set(of_session) == {"resolved", *on_trace}
    resolved = of_session["resolved"]
    assert (resolved["name"], resolved["value"], resolved["comment"]) == ("resolved", True, "done")
    assert resolved["trace_id"] is None

    # Rolled up with the trace Langfuse exported, in the session it propagated.
    trace = server.get(f"/api/v1/traces/{trace_id}")
    assert trace["session_id"] == session_id
    assert trace["scores"]["stars"] == {"count": 1, "average": 5.0, "label": None}
    assert trace["scores"]["tone"]["label"] == "friendly"
    assert server.get(f"/api/v1/sessions/{session_id}")["scores"]["resolved"]["average"] == 1.0

    # The refusal reached the SDK as Langfuse's 207, which it logs.
    assert any("rejected 1" in c and "TEXT" in c for c in result["complaints"]), result


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"pk-lf-x:{key}".encode()).decode()}


def test_scores_route_answers_as_langfuse_does(server) -> None:
    url = server.base_url + "/api/public/scores"
    trace_id, session = new_trace_id(), f"s-{uuid.uuid4().hex[:8]}"
    good = {"name": "quality", "value": 0.5, "traceId": trace_id, "environment": "prod"}
    answer = httpx.post(url, json=[good], headers=_basic(server.api_key))
    assert (answer.status_code, answer.json()) == (202, {"message": "Accepted"})

    batch = [
        {"id": "ok-1", "name": "quality", "value": 1, "sessionId": session},
        {"id": "bad-1", "name": "quality", "value": 1},  # names nothing
        {"id": "bad-2", "name": "q", "value": "x", "traceId": trace_id, "dataType": "TEXT"},
        {"id": "bad-3", "name": "q", "value": 1, "traceId": "not-hex"},
        {"id": "bad-4", "name": "q", "value": 1, "datasetRunId": "run-1"},
        {"id": "bad-5", "value": 1, "sessionId": session},  # no name
    ]
    answer = httpx.post(url, json=batch, headers=_basic(server.api_key))
    assert answer.status_code == 207, answer.text
    results = answer.json()
    assert (results["accepted"], results["rejected"]) == (1, 5)
    assert [e["id"] for e in results["errors"]] == ["bad-1", "bad-2", "bad-3", "bad-4", "bad-5"]
    messages = " | ".join(e["message"] for e in results["errors"])
    assert "names no target" in messages and "TEXT" in messages and "dataset run" in messages
    assert [s["id"] for s in server.get("/api/v1/scores", session_id=session)["items"]] == ["ok-1"]

    # One score, as older clients send it: its id, or a 400 saying why.
    single = {"name": "tone", "value": "warm", "sessionId": session, "dataType": "CATEGORICAL"}
    answer = httpx.post(url, json=single, headers=_basic(server.api_key))
    assert answer.status_code == 200 and answer.json()["id"]
    answer = httpx.post(url, json={"name": "tone", "value": 1}, headers=_basic(server.api_key))
    assert answer.status_code == 400 and "names no target" in answer.json()["error"]

    for refused in ({}, _basic("tl_wrong"), {"Authorization": "Basic !!"}):
        answer = httpx.post(url, json=[good], headers=refused)
        assert answer.status_code == 401 and "key" in answer.json()["error"]
    answer = httpx.post(
        url, content=b"[", headers={**_basic(server.api_key), "Content-Type": "application/json"}
    )
    assert answer.status_code == 422 and "error" in answer.json()
    answer = httpx.post(url, json=[good] * 1001, headers=_basic(server.api_key))
    assert answer.status_code == 400 and "at most" in answer.json()["error"]


def test_ingestion_batch_of_langfuse_3_keeps_its_score_events(server) -> None:
    trace_id, span_id = new_trace_id(), new_span_id()
    session = f"s-{uuid.uuid4().hex[:8]}"
    batch = {
        "batch": [
            {
                "id": "event-1",
                "type": "score-create",
                "timestamp": "2026-12-05T10:00:00.000Z",
                "body": {
                    "id": "score-1",
                    "traceId": trace_id,
                    "observationId": span_id,
                    "name": "accuracy",
                    "value": 0.9,
                    "dataType": "NUMERIC",
                    "timestamp": "2026-12-05T10:00:00.000Z",
                },
            },
            {
                "id": "event-2",
                "type": "score-create",
                "timestamp": "2026-12-05T10:00:01.000Z",
                "body": {
                    "id": "score-2",
                    "sessionId": session,
                    "name": "x",
                    "value": "y",
                    "dataType": "CORRECTION",
                },
            },
            {
                "id": "event-3",
                "type": "trace-create",
                "timestamp": "2026-12-05T10:00:02.000Z",
                "body": {"id": trace_id, "name": "a trace"},
            },
        ],
        "metadata": {"sdk_name": "python", "sdk_version": "3.0.0"},
    }
    answer = httpx.post(
        server.base_url + "/api/public/ingestion", json=batch, headers=_basic(server.api_key)
    )
    assert answer.status_code == 207, answer.text
    results = answer.json()
    assert results["successes"] == [{"id": "event-1", "status": 201}]
    errors = {e["id"]: e for e in results["errors"]}
    assert set(errors) == {"event-2", "event-3"}
    assert "CORRECTION" in errors["event-2"]["message"]
    assert "trace-create" in errors["event-3"]["message"] and "OTLP" in errors["event-3"]["message"]
    [stored] = server.get("/api/v1/scores", trace_id=trace_id)["items"]
    assert (stored["id"], stored["span_id"], stored["value"]) == ("score-1", span_id, 0.9)
    assert stored["created_at"].startswith("2026-12-05T10:00:00")  # its timestamp is kept
    assert server.get("/api/v1/scores", session_id=session)["items"] == []


if __name__ == "__main__":
    main()


def test_a_scores_only_key_writes_end_user_scores_and_overwrites_none_other(server) -> None:
    browser_key = server.new_key("scores")
    url = server.base_url + "/api/public/scores"
    session = f"s-{uuid.uuid4().hex[:8]}"
    written = httpx.post(
        url,
        json=[{"id": "by-app", "name": "quality", "value": 1, "sessionId": session}],
        headers=_basic(server.api_key),
    )
    assert written.status_code == 202
    answer = httpx.post(
        url,
        json=[
            {"id": "by-user", "name": "thumbs", "value": 1, "sessionId": session},
            {"id": "by-app", "name": "quality", "value": 0, "sessionId": session},
        ],
        headers=_basic(browser_key),
    )
    assert answer.status_code == 207, answer.text
    assert answer.json()["errors"] == [
        {"message": "score 'by-app' was not written by an end user", "id": "by-app"}
    ]
    stored = {s["id"]: s for s in server.get("/api/v1/scores", session_id=session)["items"]}
    assert stored["by-user"]["source"] == "end-user"
    assert (stored["by-app"]["source"], stored["by-app"]["value"]) == ("sdk", 1.0)


def test_a_score_of_another_type_than_its_names_is_refused_alone(server) -> None:
    url = server.base_url + "/api/public/scores"
    session = f"s-{uuid.uuid4().hex[:8]}"
    batch = [
        {"id": "first", "name": "helpful", "value": 1, "sessionId": session, "dataType": "BOOLEAN"},
        {"id": "number", "name": "helpful", "value": 4, "sessionId": session},
        {"id": "label", "name": "other", "value": "warm", "sessionId": session},
    ]
    answer = httpx.post(url, json=batch, headers=_basic(server.api_key))
    assert answer.status_code == 207, answer.text
    [error] = answer.json()["errors"]
    assert error["id"] == "number", error
    assert "'helpful'" in error["message"] and "boolean" in error["message"], error
    written = server.get("/api/v1/scores", session_id=session)["items"]
    assert sorted(s["id"] for s in written) == ["first", "label"]
