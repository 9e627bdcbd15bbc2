"""Spans in the older GenAI conventions land with an input and output, through the real
OpenTelemetry SDK and its OTLP/HTTP exporter into the real server.

- OpenTelemetry's GenAI conventions before 1.28 (deprecated since): the whole prompt and
  completion as the attribute ``gen_ai.prompt`` / ``gen_ai.completion`` of the span
  events ``gen_ai.content.prompt`` / ``gen_ai.content.completion``, as instrumentations
  written to them send them (OpenLIT, Semantic Kernel), or as span attributes. No
  package here sends them, so the spans are made as those sources make them: the
  events added to the span with those names and attributes.
- OpenLLMetry's indexed messages without a role (``gen_ai.prompt.0.user``, and
  ``gen_ai.completion.N.content``): its Haystack instrumentation's own functions set
  them here on a real span.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Tracer

from threadline import semconv


@pytest.fixture
def tracer(server) -> Iterator[Tracer]:
    exporter = OTLPSpanExporter(
        endpoint=server.base_url + "/v1/traces",
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # each span sent as it ends
    yield provider.get_tracer("older-genai")
    provider.shutdown()


def _spans_of(server, session_id: str) -> dict[str, dict[str, Any]]:
    """The session's spans by name, from the API, and each with its trace."""
    found = {}
    for trace in server.get(f"/api/v1/sessions/{session_id}")["traces"]:
        detail = server.get(f"/api/v1/traces/{trace['trace_id']}")
        for span in detail["spans"]:
            found[span["name"]] = {**span, "trace": detail}
    return found


def test_the_older_genai_prompt_and_completion_are_the_spans_input_and_output(
    server, tracer
) -> None:
    session_id = f"older-{uuid.uuid4().hex[:8]}"
    asked = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    with tracer.start_as_current_span("chat gpt-4o-mini") as span:
        span.set_attributes(
            {
                semconv.SESSION_ID: session_id,
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
            }
        )
        span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": json.dumps(asked)})
        span.add_event(
            "gen_ai.content.completion",
            {"gen_ai.completion": json.dumps([{"role": "assistant", "content": "Paris."}])},
        )
    with tracer.start_as_current_span("completion") as span:
        span.set_attributes(
            {
                semconv.SESSION_ID: session_id,
                "gen_ai.prompt": "Translate 'merci' to English.",
                "gen_ai.completion": "Thank you.",
            }
        )
    # A span in today's conventions that also carries the old event keeps today's input.
    with tracer.start_as_current_span("both") as span:
        span.set_attributes(
            {
                semconv.SESSION_ID: session_id,
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "new"}]}]
                ),
            }
        )
        span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": "old"})

    spans = _spans_of(server, session_id)
    chat = spans["chat gpt-4o-mini"]
    assert chat["input"] == asked
    assert chat["output"] == [{"role": "assistant", "content": "Paris."}]
    assert chat["span_type"] == "LLM" and chat["model"] == "gpt-4o-mini"
    assert chat["trace"]["input_preview_text"] == "What is the capital of France?"
    assert chat["trace"]["output_preview_text"] == "Paris."
    # The events stay on the span as sent.
    assert [e["name"] for e in chat["events"]] == [
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
    ]
    plain = spans["completion"]
    assert (plain["input"], plain["output"]) == ("Translate 'merci' to English.", "Thank you.")
    assert plain["trace"]["input_preview_text"] == "Translate 'merci' to English."
    assert spans["both"]["input"] == [{"role": "user", "content": "new"}]
    session = server.get("/api/v1/sessions", q=session_id)["items"][0]
    assert session["first_input_text"] == "What is the capital of France?"
    # Searchable, as every input is.
    assert server.get("/api/v1/traces", q="capital France")["items"]


def test_openllmetrys_messages_without_a_role_are_the_spans_chat(server, tracer) -> None:
    wrap_openai = pytest.importorskip("opentelemetry.instrumentation.haystack.wrap_openai")
    from opentelemetry.semconv_ai import LLMRequestTypeValues

    session_id = f"haystack-{uuid.uuid4().hex[:8]}"
    completion = LLMRequestTypeValues.COMPLETION
    with tracer.start_as_current_span("haystack.openai.completion") as span:
        span.set_attribute(semconv.SESSION_ID, session_id)
        # What the instrumentation's wrapper of Haystack's OpenAI generator calls, as it
        # calls them for a completion.
        asked = {"prompt": "Write a haiku about rain", "generation_kwargs": {"model": "davinci"}}
        wrap_openai._set_input_attributes(span, completion, asked)
        wrap_openai._set_span_completions(span, completion, ["Soft rain on the roof", "Hush."])
    (chat,) = _spans_of(server, session_id).values()
    assert chat["attributes"]["gen_ai.prompt.0.user"] == "Write a haiku about rain"
    assert "gen_ai.completion.0.role" not in chat["attributes"]
    assert chat["input"] == [{"role": "user", "content": "Write a haiku about rain"}]
    assert chat["output"] == [
        {"role": "assistant", "content": "Soft rain on the roof"},
        {"role": "assistant", "content": "Hush."},
    ]
    assert chat["model"] == "davinci"
    assert chat["trace"]["input_preview_text"] == "Write a haiku about rain"
