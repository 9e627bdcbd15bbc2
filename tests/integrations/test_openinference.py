"""OpenInference (the conventions of Arize Phoenix): ``openinference-instrumentation-openai``
with OpenInference's tracer provider and the OpenTelemetry OTLP/HTTP exporter, unmodified.

Session, user, metadata and tags come from OpenInference's context helpers
(``using_attributes``), which put ``session.id``, ``user.id``, ``metadata`` and
``tag.tags`` on every span started inside them; each turn is a ``chain`` span around
the instrumented OpenAI call, which carries ``llm.input_messages.N.message.*``,
``llm.output_messages.N.message.*``, ``llm.token_count.*`` and ``llm.model_name``.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.integrations.conversation import (
    MODEL,
    SESSIONS,
    ProgramEnv,
    check_sessions,
    check_transcripts,
    history_for,
    llm_span,
    run_program,
)
from tests.integrations.fake_openai import FakeOpenAI

pytestmark = pytest.mark.slow

pytest.importorskip("openinference.instrumentation.openai")


def main() -> None:
    """The program: two conversations, each turn a chain span around one LLM call."""
    import openai
    from openinference.instrumentation import TracerProvider, using_attributes
    from openinference.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    env = ProgramEnv.from_environ()
    provider = TracerProvider(resource=Resource.create({"service.name": "phoenix-app"}))
    provider.add_span_processor(BatchSpanProcessor(env.otlp_exporter()))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    tracer = provider.get_tracer("support-bot")
    client = openai.OpenAI(base_url=env.openai_url, api_key="sk-fake", max_retries=0)

    for session in SESSIONS:
        replies: list[str] = []
        for index, question in enumerate(session.questions):
            with (
                using_attributes(
                    session_id=env.session_id(session),
                    user_id=session.user_id,
                    metadata={"turn": index + 1, "channel": "chat"},
                    tags=["support", f"session-{session.suffix}"],
                ),
                tracer.start_as_current_span(
                    "support-turn", openinference_span_kind="chain"
                ) as turn,
            ):
                turn.set_input(question)
                response = client.chat.completions.create(
                    model=MODEL, messages=history_for(session, index, replies)
                )
                reply = response.choices[0].message.content
                turn.set_output(reply)
                replies.append(reply)
    provider.shutdown()  # flushes: every span is acknowledged before the program exits


def test_openinference_app_sessions_users_messages_tokens_and_cost(server) -> None:
    with FakeOpenAI() as fake:
        env = ProgramEnv(server.base_url, server.api_key, fake.base_url, uuid.uuid4().hex)
        run_program("test_openinference", env)
    assert len(fake.exchanges) == 4
    traces = check_sessions(server, env, fake.exchanges)
    check_transcripts(traces, fake.exchanges)
    exchanges = iter(fake.exchanges)
    for session in SESSIONS:
        for index, trace in enumerate(traces[session.suffix]):
            exchange = next(exchanges)
            assert trace["name"] == "support-turn"
            assert trace["metadata"] == {"turn": index + 1, "channel": "chat"}
            assert trace["tags"] == ["support", f"session-{session.suffix}"]
            # The chain span's input.value / output.value: the turn's question and reply.
            assert (trace["input_preview"], trace["output_preview"]) == (
                session.questions[index],
                exchange.reply,
            )
            root = next(s for s in trace["spans"] if s["parent_span_id"] is None)
            assert root["span_type"] == "DEFAULT"  # CHAIN has no Threadline meaning
            # The LLM span: llm.input_messages / llm.output_messages in the one shape,
            # exactly the messages the program sent and the reply it got.
            llm = llm_span(trace)
            assert llm["input"] == exchange.request["messages"]
            assert llm["output"] == [{"role": "assistant", "content": exchange.reply}]
            # The originals stay: the request body OpenInference recorded as input.value.
            assert (
                json.loads(llm["attributes"]["input.value"])["messages"]
                == (exchange.request["messages"])
            )
            assert llm["attributes"]["llm.model_name"] == exchange.model


if __name__ == "__main__":
    main()
