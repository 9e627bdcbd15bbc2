"""Sessions inferred for a real app that sends no session id: the ``openai`` client under
``openinference-instrumentation-openai``, with the OTLP/HTTP exporter, unmodified,
against the fake OpenAI server.

Three conversations with the same system prompt take three turns each, interleaved
(turn 1 of each, then turn 2 of each, ...), each turn a ``chain`` span around one call:

- chat completions resend the conversation so far, so each turn's input begins with
  the previous turn's messages and reply (signal ``history``);
- the Responses API sends only the new question, chained by ``previous_response_id``
  (OpenInference records it in the request's JSON; the response id is in the
  response's JSON) (signal ``previous_response_id``).

The program either exports as it goes, or collects every span and then exports each
trace on its own, in the reverse order of the turns (``TL_TEST_ORDER=reversed``).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from tests.integrations.conversation import ProgramEnv, run_program
from tests.integrations.fake_openai import Exchange, FakeOpenAI

pytestmark = pytest.mark.slow

pytest.importorskip("openinference.instrumentation.openai")

MODEL = "gpt-4o-mini"
SYSTEM_PROMPT = "You are a terse support agent."
CONVERSATIONS = (
    ("My order 1138 has not arrived", "Can you refund it?", "Thanks, and the shipping fee?"),
    ("How do I reset my password?", "It says my link expired", "Now it works, thanks"),
    ("Do you ship to Norway?", "How long does it take?", "And to Iceland?"),
)


def main() -> None:
    import openai
    from openinference.instrumentation import TracerProvider
    from openinference.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    env = ProgramEnv.from_environ()
    api = os.environ["TL_TEST_API"]
    reversed_order = os.environ.get("TL_TEST_ORDER") == "reversed"
    exporter = env.otlp_exporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-app"}))
    collected = InMemorySpanExporter()
    provider.add_span_processor(
        SimpleSpanProcessor(collected) if reversed_order else BatchSpanProcessor(exporter)
    )
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    tracer = provider.get_tracer("support-bot")
    client = openai.OpenAI(base_url=env.openai_url, api_key="sk-fake", max_retries=0)

    histories: list[list[dict[str, str]]] = [
        [{"role": "system", "content": SYSTEM_PROMPT}] for _ in CONVERSATIONS
    ]
    previous: list[str | None] = [None for _ in CONVERSATIONS]
    turn_traces: list[int] = []
    for index in range(3):
        for number, questions in enumerate(CONVERSATIONS):
            question = questions[index]
            with tracer.start_as_current_span("turn", openinference_span_kind="chain") as turn:
                turn.set_input(question)
                if api == "responses":
                    response = client.responses.create(
                        model=MODEL,
                        instructions=SYSTEM_PROMPT,
                        input=question,
                        previous_response_id=previous[number],
                    )
                    previous[number] = response.id
                    reply = response.output_text
                else:
                    histories[number].append({"role": "user", "content": question})
                    completion = client.chat.completions.create(
                        model=MODEL, messages=histories[number]
                    )
                    reply = completion.choices[0].message.content or ""
                    histories[number].append({"role": "assistant", "content": reply})
                turn.set_output(reply)
                turn_traces.append(turn.get_span_context().trace_id)
    if reversed_order:
        spans = collected.get_finished_spans()
        for trace_id in reversed(turn_traces):
            result = exporter.export([s for s in spans if s.context.trace_id == trace_id])
            assert result.name == "SUCCESS", result
        exporter.shutdown()
    provider.shutdown()


def conversation_of(exchange: Exchange) -> int:
    """Which conversation the exchange's question belongs to."""
    request = exchange.request
    asked = request["input"] if "input" in request else request["messages"][-1]["content"]
    (number,) = [n for n, questions in enumerate(CONVERSATIONS) if asked in questions]
    return number


def run(
    server: Any, api: str, order: str = "as-they-go", cached_fraction: float = 0.0
) -> list[Exchange]:
    with FakeOpenAI(model=MODEL, cached_fraction=cached_fraction) as fake:
        env = ProgramEnv(server.base_url, server.api_key, fake.base_url, uuid.uuid4().hex)
        run_program("test_inferred_sessions", env, TL_TEST_API=api, TL_TEST_ORDER=order)
    assert len(fake.exchanges) == 9
    return fake.exchanges


def check_inferred(server: Any, exchanges: list[Exchange], signal: str) -> None:
    """Three inferred sessions of three turns, each one conversation's, in order, with
    the tokens the fake reported, named after the conversation's first turn."""
    listed = server.get("/api/v1/sessions")["items"]
    assert len(listed) == 3
    for session in listed:
        assert session["inferred"] is True
        assert session["inferred_by"] == [signal]
        detail = server.get(f"/api/v1/sessions/{session['session_id']}")
        assert detail["trace_count"] == 3
        assert detail["session_id"] == f"inferred-{detail['traces'][0]['trace_id']}"
        questions = [t["input_preview"] for t in detail["traces"]]
        (number,) = [n for n, q in enumerate(CONVERSATIONS) if questions == list(q)]
        mine = [e for e in exchanges if conversation_of(e) == number]
        assert detail["input_tokens"] == sum(e.usage["prompt_tokens"] for e in mine)
        assert detail["output_tokens"] == sum(e.usage["completion_tokens"] for e in mine)
        assert [t["output_preview"] for t in detail["traces"]] == [e.reply for e in mine]


@pytest.mark.parametrize("order", ["as-they-go", "reversed"])
def test_chat_completions_resending_history_become_three_inferred_sessions(
    server: Any, order: str
) -> None:
    exchanges = run(server, "chat", order)
    check_inferred(server, exchanges, "history")


@pytest.mark.parametrize("order", ["as-they-go", "reversed"])
def test_responses_chained_by_previous_response_id_become_three_inferred_sessions(
    server: Any, order: str
) -> None:
    exchanges = run(server, "responses", order)
    # Each Responses call sent only its new question: no history to link them by.
    assert all(not isinstance(e.request["input"], list) for e in exchanges)
    check_inferred(server, exchanges, "previous_response_id")


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_context_per_turn_with_openai_cached_tokens(server: Any, api: str) -> None:
    """What the session page charts, from the spans OpenInference made: each turn's
    prompt tokens against gpt-4o-mini's window (128,000 tokens), the share OpenAI
    reported as cached (``cached_tokens``, recorded as
    ``llm.token_count.prompt_details.cache_read``), and no history dropped."""
    from threadline.server.context_growth import context_growth
    from threadline.server.model import TraceDetail

    exchanges = run(server, api, cached_fraction=0.5)
    by_question = {conversation_of(e): [] for e in exchanges}
    for e in exchanges:
        by_question[conversation_of(e)].append(e)
    for session in server.get("/api/v1/sessions")["items"]:
        traces = [
            TraceDetail.model_validate(server.get(f"/api/v1/traces/{t['trace_id']}"))
            for t in server.get(f"/api/v1/sessions/{session['session_id']}")["traces"]
        ]
        turns = context_growth(traces)
        (number,) = {conversation_of_trace(t) for t in traces}
        mine = by_question[number]
        assert [(t.input_tokens, t.context_window, t.history_dropped) for t in turns] == [
            (e.usage["prompt_tokens"], 128_000, False) for e in mine
        ]
        assert [t.cached_share for t in turns] == [
            e.usage["cached_tokens"] / e.usage["prompt_tokens"] for e in mine
        ]
        assert all(t.cached_tokens for t in turns)
        assert session["peak_context_use"] == max(e.usage["prompt_tokens"] for e in mine) / 128_000


def conversation_of_trace(trace: Any) -> int:
    question = trace.input_preview
    (number,) = [n for n, questions in enumerate(CONVERSATIONS) if question in questions]
    return number


def test_with_inference_off_the_turns_stay_without_a_session(server: Any) -> None:
    response = server.http.put("/api/v1/settings/session-inference", json={"enabled": False})
    assert response.status_code == 200
    run(server, "chat")
    assert server.get("/api/v1/sessions")["items"] == []
    traces = server.get("/api/v1/traces")["items"]
    assert len(traces) == 9 and all(t["session_id"] is None for t in traces)


if __name__ == "__main__":
    main()
