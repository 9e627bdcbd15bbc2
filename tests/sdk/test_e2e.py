"""End to end: a multi-turn chat program traced with the real SDK, exported over real
OTLP/HTTP to the real server, read back through the JSON API.

One trace per turn, one session across turns; the session id is set *after* each turn's
root span started (the seed page's pattern); a tool runs in a thread pool; one turn
fails. The server fixture (tests/conftest.py) gives each test its own project and key.
"""

from __future__ import annotations

import contextvars
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from threadline import SpanType, Threadline, observe

TURNS = ["hello", "what's the weather in Paris?", "please fail", "thanks!"]
USER = "user-42"


class ModelUnavailable(RuntimeError):
    pass


@observe(span_type=SpanType.TOOL)
def lookup_weather(city: str) -> dict[str, Any]:
    return {"city": city, "forecast": "sunny", "celsius": 21}


@observe(span_type="LLM")
def fake_llm(prompt: str) -> str:
    if "fail" in prompt:
        raise ModelUnavailable("model unavailable")
    return f"echo: {prompt}"


@observe(ignore_inputs=["trace_ids"])  # a test-side out-parameter, not a real input
def chat_turn(conversation_id: str, user_message: str, trace_ids: list[str]) -> str:
    trace_ids.append(Threadline.get_trace_id() or "")
    # Set after the root span started, as on the seed page: must still cover the trace.
    Threadline.set_trace_session_id(conversation_id)
    Threadline.set_trace_user_id(USER)
    with ThreadPoolExecutor(max_workers=1) as pool:
        weather = pool.submit(contextvars.copy_context().run, lookup_weather, "Paris").result()
    return fake_llm(f"{user_message} ({weather['forecast']})")


def test_multi_turn_chat_session(sdk_to_server: Any) -> None:
    server = sdk_to_server
    conversation = f"conv-{uuid.uuid4().hex[:12]}"
    trace_ids: list[str] = []
    replies: dict[str, str] = {}
    for message in TURNS:
        try:
            replies[message] = chat_turn(conversation, message, trace_ids)
        except ModelUnavailable:
            pass
    assert Threadline.flush() is True  # a 2xx from the server means committed

    assert len(set(trace_ids)) == len(TURNS) and all(len(t) == 32 for t in trace_ids)
    session = server.get(f"/api/v1/sessions/{conversation}")
    assert session["session_id"] == conversation
    assert session["trace_count"] == len(TURNS)
    assert session["user_ids"] == [USER]
    assert session["error_count"] >= 1
    assert [t["trace_id"] for t in session["traces"]] == trace_ids  # start order
    for summary in session["traces"]:
        assert summary["session_id"] == conversation
        assert summary["user_id"] == USER

    for message, trace_id in zip(TURNS, trace_ids, strict=True):
        detail = server.get(f"/api/v1/traces/{trace_id}")
        spans = {span["name"]: span for span in detail["spans"]}
        assert set(spans) == {"chat_turn", "lookup_weather", "fake_llm"}
        root, tool, llm = spans["chat_turn"], spans["lookup_weather"], spans["fake_llm"]
        assert detail["session_id"] == conversation and detail["user_id"] == USER
        assert root["parent_span_id"] is None
        assert tool["parent_span_id"] == root["span_id"]  # across the thread pool
        assert llm["parent_span_id"] == root["span_id"]
        assert tool["span_type"] == "TOOL" and llm["span_type"] == "LLM"
        assert root["input"] == {"conversation_id": conversation, "user_message": message}
        assert tool["input"] == {"city": "Paris"}
        assert tool["output"] == {"city": "Paris", "forecast": "sunny", "celsius": 21}
        if message == "please fail":
            assert detail["status"] == "error"
            assert root["status"] == "error" and llm["status"] == "error"
            assert "ModelUnavailable" in (llm["status_message"] or "")
            assert any(event["name"] == "exception" for event in llm["events"])
            assert root["output"] is None
        else:
            assert detail["status"] == "ok"
            assert root["status"] == "ok"
            assert root["output"] == replies[message] == f"echo: {message} (sunny)"
