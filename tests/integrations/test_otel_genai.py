"""OpenTelemetry GenAI semantic conventions: ``opentelemetry-instrumentation-openai-v2``
with the plain OpenTelemetry SDK and its OTLP/HTTP exporter, unmodified.

The instrumentor (2.3b0) puts operation, provider, model and usage on its ``chat``
spans; with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` it sends the
message content as log events, not span attributes. So the program does what a GenAI
app does to mark a conversation: an ``invoke_agent`` span per turn carrying
``gen_ai.conversation.id`` and the turn's ``gen_ai.input.messages`` /
``gen_ai.output.messages`` / ``gen_ai.system_instructions`` (GenAI parts). Cache and
reasoning tokens, which the instrumentor never sets, are covered by a hand-built span.
"""

from __future__ import annotations

import json
import uuid

import pytest
from genai_prices import Usage, calc_price

from tests.integrations.conversation import (
    MODEL,
    SESSIONS,
    SYSTEM_PROMPT,
    ProgramEnv,
    approx_cost,
    check_sessions,
    check_transcripts,
    history_for,
    llm_span,
    run_program,
)
from tests.integrations.fake_openai import FakeOpenAI
from tests.otlp import new_span_id, new_trace_id, request, span

pytestmark = pytest.mark.slow

pytest.importorskip("opentelemetry.instrumentation.openai_v2")


def _parts(text: str) -> list[dict[str, str]]:
    return [{"type": "text", "content": text}]


def main() -> None:
    """The program: two conversations through the instrumented ``openai`` client."""
    import openai
    from opentelemetry import trace
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    env = ProgramEnv.from_environ()
    provider = TracerProvider(resource=Resource.create({"service.name": "genai-app"}))
    provider.add_span_processor(BatchSpanProcessor(env.otlp_exporter()))
    trace.set_tracer_provider(provider)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    tracer = trace.get_tracer("support-bot")
    client = openai.OpenAI(base_url=env.openai_url, api_key="sk-fake", max_retries=0)

    for session in SESSIONS:
        replies: list[str] = []
        for index, question in enumerate(session.questions):
            with tracer.start_as_current_span("invoke_agent support-bot") as turn:
                turn.set_attributes(
                    {
                        "gen_ai.operation.name": "invoke_agent",
                        "gen_ai.conversation.id": env.session_id(session),
                        "user.id": session.user_id,
                        "gen_ai.system_instructions": json.dumps(_parts(SYSTEM_PROMPT)),
                        "gen_ai.input.messages": json.dumps(
                            [{"role": "user", "parts": _parts(question)}]
                        ),
                    }
                )
                response = client.chat.completions.create(
                    model=MODEL, messages=history_for(session, index, replies)
                )
                reply = response.choices[0].message.content
                turn.set_attribute(
                    "gen_ai.output.messages",
                    json.dumps(
                        [{"role": "assistant", "parts": _parts(reply), "finish_reason": "stop"}]
                    ),
                )
                replies.append(reply)
    provider.shutdown()  # flushes: every span is acknowledged before the program exits


def test_genai_app_sessions_users_messages_tokens_and_cost(server) -> None:
    with FakeOpenAI() as fake:
        env = ProgramEnv(server.base_url, server.api_key, fake.base_url, uuid.uuid4().hex)
        run_program(
            "test_otel_genai", env, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true"
        )
    assert len(fake.exchanges) == 4
    traces = check_sessions(server, env, fake.exchanges)
    check_transcripts(traces, fake.exchanges)
    replies = iter(e.reply for e in fake.exchanges)
    for session in SESSIONS:
        for trace, question in zip(traces[session.suffix], session.questions, strict=True):
            reply = next(replies)
            assert trace["name"] == "invoke_agent support-bot"
            # The turn's question; the system instructions stay in the root's input.
            assert json.loads(trace["input_preview"]) == [{"role": "user", "content": question}]
            root_input = next(s for s in trace["spans"] if s["parent_span_id"] is None)["input"]
            assert root_input[0] == {"role": "system", "content": SYSTEM_PROMPT}
            assert json.loads(trace["output_preview"]) == [
                {"role": "assistant", "content": reply, "finish_reason": "stop"}
            ]
            llm = llm_span(trace)
            assert llm["attributes"]["gen_ai.operation.name"] == "chat"
            assert llm["attributes"]["gen_ai.system"] == "openai"
            # The original attributes stay on the span beside the normalised input.
            root = next(s for s in trace["spans"] if s["parent_span_id"] is None)
            assert json.loads(root["attributes"]["gen_ai.input.messages"])[0]["parts"] == (
                _parts(question)
            )


def test_cache_and_reasoning_tokens_price_and_stay_on_the_span(server) -> None:
    """What the instrumentor does not emit, as an app following the newest semconv
    would send it: provider name, cache tokens, reasoning tokens (part of the output
    tokens, as OpenAI bills them)."""
    usage = {
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.cache_read.input_tokens": 1000,
        "gen_ai.usage.reasoning.output_tokens": 200,
    }
    trace_id = new_trace_id()
    sent = span(
        trace_id,
        new_span_id(),
        name="chat o4-mini",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "o4-mini",
            "gen_ai.conversation.id": "genai-cache",
            **usage,
        },
    )
    assert server.export(request([sent]).SerializeToString()).status_code == 200
    (stored,) = server.get(f"/api/v1/traces/{trace_id}")["spans"]
    assert stored["span_type"] == "LLM" and stored["model"] == "o4-mini"
    assert (stored["input_tokens"], stored["output_tokens"], stored["total_tokens"]) == (
        1200,
        300,
        1500,
    )
    expected = calc_price(
        Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1000),
        "o4-mini",
        provider_id="openai",
    ).total_price
    uncached = calc_price(
        Usage(input_tokens=1200, output_tokens=300), "o4-mini", provider_id="openai"
    ).total_price
    assert expected < uncached  # the cache discount is real, so the check can fail
    assert approx_cost(stored["cost_usd"], expected)
    assert {k: stored["attributes"][k] for k in usage} == usage
    assert server.get("/api/v1/sessions/genai-cache")["trace_count"] == 1


if __name__ == "__main__":
    main()
