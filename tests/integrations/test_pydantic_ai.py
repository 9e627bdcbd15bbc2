"""pydantic-ai's own instrumentation, unmodified, with the plain OpenTelemetry SDK and
its OTLP/HTTP exporter, against the fake OpenAI server.

pydantic-ai sends one ``invoke_agent`` span per run (the trace's root), carrying
``gen_ai.conversation.id`` and its instructions as ``gen_ai.system_instructions`` but
no ``gen_ai.input.messages``; its ``chat`` span below carries the whole chat. The
instructions alone must never stand for the turn's input: previews, ``first_input``,
search and the transcript show what the user said.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.integrations.conversation import (
    MODEL,
    SESSIONS,
    SYSTEM_PROMPT,
    ProgramEnv,
    check_transcript,
    exchanges_by_session,
    run_program,
)
from tests.integrations.fake_openai import FakeOpenAI

pytest.importorskip("pydantic_ai")
pytestmark = pytest.mark.slow


def main() -> None:
    """The program: two conversations of two runs each, through one instrumented agent."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    env = ProgramEnv.from_environ()
    provider = TracerProvider(resource=Resource.create({"service.name": "pydantic-ai-app"}))
    provider.add_span_processor(BatchSpanProcessor(env.otlp_exporter()))
    model = OpenAIChatModel(
        MODEL, provider=OpenAIProvider(base_url=env.openai_url, api_key="sk-fake")
    )
    agent = Agent(model, instructions=SYSTEM_PROMPT)
    agent.instrument = InstrumentationSettings(tracer_provider=provider)
    for session in SESSIONS:
        history = None
        for question in session.questions:
            result = agent.run_sync(
                question, message_history=history, conversation_id=env.session_id(session)
            )
            history = result.all_messages()
    provider.shutdown()  # flushes: every span is acknowledged before the program exits


def test_pydantic_ai_turns_show_what_the_user_said(server) -> None:
    with FakeOpenAI() as fake:
        env = ProgramEnv(server.base_url, server.api_key, fake.base_url, uuid.uuid4().hex)
        run_program("test_pydantic_ai", env)
    assert len(fake.exchanges) == 4
    grouped = exchanges_by_session(fake.exchanges)
    for session in SESSIONS:
        found = server.get(f"/api/v1/sessions/{env.session_id(session)}")
        assert found["trace_count"] == len(session.questions)
        # The first turn's question, not the agent's instructions.
        assert json.loads(found["first_input"]) == [
            {"role": "user", "content": session.questions[0]}
        ]
        traces = [server.get(f"/api/v1/traces/{t['trace_id']}") for t in found["traces"]]
        for trace, question in zip(traces, session.questions, strict=True):
            assert trace["name"] == "invoke_agent agent"
            assert json.loads(trace["input_preview"]) == [{"role": "user", "content": question}]
            root = next(s for s in trace["spans"] if s["parent_span_id"] is None)
            # Its instructions stay on the span, and are not taken for its input.
            assert root["attributes"]["gen_ai.system_instructions"]
            assert root["input"] is None
            (chat,) = [s for s in trace["spans"] if s["span_type"] == "LLM"]
            assert chat["input"][0] == {"role": "system", "content": SYSTEM_PROMPT}
        replies = [e.reply for e in grouped[session.suffix]]
        check_transcript(traces, session, replies)
        # Search finds a turn by what the user said.
        hits = server.get("/api/v1/traces", q=session.questions[1])["items"]
        assert [t["trace_id"] for t in hits] == [traces[1]["trace_id"]]
        assert server.get("/api/v1/traces", q=SYSTEM_PROMPT)["items"] == []


if __name__ == "__main__":
    main()
