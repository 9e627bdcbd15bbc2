"""Threadline's own SDK with its OpenAI auto-instrumentation, exporting to the server.

The program is what a newcomer writes: ``Threadline.initialize()``, one ``@observe``d
function per turn that names the session and user, and the real ``openai`` client;
OpenTelemetry's instrumentor (``opentelemetry-instrumentation-openai-v2``) makes the
``chat`` spans and the SDK puts each call's messages on its span. The turn function
records neither its argument nor its result, so whatever the session shows of the
conversation came from the instrumented call. The first turn of each session is a plain
call, the second a stream; ``TL_MODE=tools`` runs one turn whose model asks for a tool
first (both calls streamed).
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest

from tests.integrations.conversation import (
    MODEL,
    SESSIONS,
    SYSTEM_PROMPT,
    ProgramEnv,
    check_sessions,
    check_transcripts,
    history_for,
    llm_span,
    run_program,
)
from tests.integrations.fake_openai import FakeOpenAI

pytestmark = pytest.mark.slow

pytest.importorskip("opentelemetry.instrumentation.openai_v2")

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Where an order is.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]
TOOL_RESULT = "Order 1138 left the warehouse on Monday."
TOOL_SESSION = "tools"


def main() -> None:
    import openai

    from threadline import Threadline, observe

    env = ProgramEnv.from_environ()
    Threadline.initialize(env.api_key, env.threadline_url, service_name="support-bot")
    client = openai.OpenAI(base_url=env.openai_url, api_key="sk-fake", max_retries=0)

    def streamed(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
        stream = client.chat.completions.create(
            model=MODEL,
            messages=messages,
            tools=TOOLS,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, calls = "", {}
        for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for call in choice.delta.tool_calls or []:
                    made = calls.setdefault(call.index, {"id": call.id, "type": "function"})
                    function = made.setdefault("function", {"name": None, "arguments": ""})
                    function["name"] = function["name"] or call.function.name
                    function["arguments"] += call.function.arguments or ""
        return text, list(calls.values())

    @observe(name="support-turn", ignore_input=True, ignore_output=True)
    def turn(session_id: str, user_id: str, messages: list[dict[str, Any]], stream: bool) -> str:
        Threadline.set_trace_session_id(session_id)
        Threadline.set_trace_user_id(user_id)
        if not stream:
            response = client.chat.completions.create(model=MODEL, messages=messages)
            return response.choices[0].message.content or ""
        return streamed(messages)[0]

    @observe(name="support-turn", ignore_input=True, ignore_output=True)
    def turn_with_tool(session_id: str, question: str) -> str:
        Threadline.set_trace_session_id(session_id)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": question},
        ]
        _, calls = streamed(messages)
        messages.append({"role": "assistant", "content": None, "tool_calls": calls})
        messages.append({"role": "tool", "tool_call_id": calls[0]["id"], "content": TOOL_RESULT})
        return streamed(messages)[0]

    if os.environ.get("TL_MODE") == "tools":
        turn_with_tool(f"{env.run_id}-{TOOL_SESSION}", SESSIONS[0].questions[0])
    else:
        for session in SESSIONS:
            replies: list[str] = []
            for index in range(len(session.questions)):
                messages = history_for(session, index, replies)
                replies.append(
                    turn(env.session_id(session), session.user_id, messages, stream=index == 1)
                )
    assert Threadline.flush()


def test_sessions_show_each_turns_messages_plain_and_streamed(server) -> None:
    with FakeOpenAI() as fake:
        env = ProgramEnv(server.base_url, server.api_key, fake.base_url, uuid.uuid4().hex)
        run_program("test_sdk_openai", env)
    assert len(fake.exchanges) == 4
    assert [e.request.get("stream", False) for e in fake.exchanges] == [False, True] * 2
    traces = check_sessions(server, env, fake.exchanges)  # tokens and cost, streamed too
    check_transcripts(traces, fake.exchanges)  # the session page's turns
    exchanges = iter(fake.exchanges)
    for session in SESSIONS:
        for index, trace in enumerate(traces[session.suffix]):
            exchange = next(exchanges)
            assert trace["name"] == "support-turn"
            # Nothing but the chat span says what was asked and answered.
            assert (trace["input_preview_text"], trace["output_preview_text"]) == (
                session.questions[index],
                exchange.reply,
            )
            llm = llm_span(trace)
            assert llm["input"] == exchange.request["messages"]
            assert llm["output"] == [
                {"role": "assistant", "content": exchange.reply, "finish_reason": "stop"}
            ]
            # As the GenAI conventions spell it: typed parts, the system prompt first.
            sent = json.loads(llm["attributes"]["gen_ai.input.messages"])
            assert sent[0] == {
                "role": "system",
                "parts": [{"type": "text", "content": SYSTEM_PROMPT}],
            }
        found = server.get(f"/api/v1/sessions/{env.session_id(session)}")
        assert found["first_input_text"] == session.questions[0]
        assert found["last_output_text"] == fake.exchanges[-1 if session.suffix == "b" else 1].reply
    # Search finds a session by what its model replied.
    reply = fake.exchanges[3].reply
    hits = server.get("/api/v1/sessions", q="Answer 4")["items"]
    assert [h["session_id"] for h in hits] == [env.session_id(SESSIONS[1])], reply


def test_a_tool_call_and_its_result_show_in_order(server) -> None:
    with FakeOpenAI(call_tools=True) as fake:
        env = ProgramEnv(server.base_url, server.api_key, fake.base_url, uuid.uuid4().hex)
        run_program("test_sdk_openai", env, TL_MODE="tools")
    asked, answered = fake.exchanges
    assert asked.tool_call is not None and asked.reply == ""
    session = server.get(f"/api/v1/sessions/{env.run_id}-{TOOL_SESSION}")
    (listed,) = session["traces"]
    trace = server.get(f"/api/v1/traces/{listed['trace_id']}")
    first, second = sorted(
        (s for s in trace["spans"] if s["span_type"] == "LLM"), key=lambda s: s["start_time"]
    )
    call = {
        "id": asked.tool_call["id"],
        "name": "lookup_order",
        "arguments": asked.tool_call["function"]["arguments"],
    }
    assert first["output"] == [
        {"role": "assistant", "content": "", "tool_calls": [call], "finish_reason": "tool_calls"}
    ]
    question = SESSIONS[0].questions[0]
    assert second["input"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": question},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": TOOL_RESULT, "tool_call_id": call["id"]},
    ]
    assert second["output"] == [
        {"role": "assistant", "content": answered.reply, "finish_reason": "stop"}
    ]
    assert (trace["input_preview_text"], trace["output_preview_text"]) == (
        question,
        answered.reply,
    )


def test_with_content_capture_off_no_message_text_is_sent(server) -> None:
    with FakeOpenAI() as fake:
        env = ProgramEnv(server.base_url, server.api_key, fake.base_url, uuid.uuid4().hex)
        run_program("test_sdk_openai", env, THREADLINE_CAPTURE_CONTENT="false")
    traces = check_sessions(server, env, fake.exchanges)  # still tokens, cost, sessions
    texts = {SYSTEM_PROMPT, *(e.reply for e in fake.exchanges)}
    texts |= {q for s in SESSIONS for q in s.questions}
    for session in SESSIONS:
        for trace in traces[session.suffix]:
            assert trace["input_preview"] is None and trace["output_preview"] is None
            for span in trace["spans"]:
                assert span["input"] is None and span["output"] is None
                shown = json.dumps(span)
                assert not [t for t in texts if t in shown], span


if __name__ == "__main__":
    main()
