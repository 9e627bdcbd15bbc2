"""The convention table, one source at a time (pure functions, no server)."""

from __future__ import annotations

import json

import pytest

from tests.otlp import BASE_NS, new_span_id, new_trace_id, request, span
from threadline.server.ingest.normalize import normalize_request


def _normalize(attributes: dict, **kwargs):
    (record,) = normalize_request(
        request([span(new_trace_id(), new_span_id(), attributes=attributes, **kwargs)])
    ).spans
    return record


@pytest.mark.parametrize(
    ("session_key", "user_key"),
    [
        ("threadline.session.id", "threadline.user.id"),
        ("lmnr.association.properties.session_id", "lmnr.association.properties.user_id"),
        ("session.id", "user.id"),  # OpenInference
        ("gen_ai.conversation.id", "user.id"),  # OpenTelemetry GenAI
        ("traceloop.association.properties.session_id", "traceloop.association.properties.user_id"),
        ("langfuse.session.id", "langfuse.user.id"),
    ],
)
def test_session_and_user_keys(session_key, user_key):
    record = _normalize({session_key: "conv-1", user_key: "ana"})
    assert (record.session_id, record.user_id) == ("conv-1", "ana")


def test_threadline_keys_win_over_others():
    record = _normalize({"session.id": "theirs", "threadline.session.id": "ours"})
    assert record.session_id == "ours"


def test_openinference_llm_span():
    record = _normalize(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.token_count.prompt": 12,
            "llm.token_count.completion": 3,
            "llm.token_count.total": 15,
            "input.value": "What is 2+2?",
            "output.value": "4",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "What is 2+2?",
            "metadata": json.dumps({"experiment": "a"}),
            "tag.tags": ["x", "y"],
        }
    )
    assert record.span_type == "LLM" and record.model == "gpt-4o-mini"
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (12, 3, 15)
    # The chat messages win over the payload; the payload attribute stays on the span.
    assert json.loads(record.input) == [{"role": "user", "content": "What is 2+2?"}]
    assert record.input_source is None and record.attributes["input.value"] == "What is 2+2?"
    assert (record.output, record.output_source) == ("4", "output.value")
    assert record.metadata == {"experiment": "a"} and record.tags == ["x", "y"]
    assert record.cost_usd is not None and record.cost_usd > 0


def test_openinference_chain_is_default_and_tool_is_tool():
    assert _normalize({"openinference.span.kind": "CHAIN"}).span_type == "DEFAULT"
    assert _normalize({"openinference.span.kind": "TOOL"}).span_type == "TOOL"


def test_genai_semconv_span():
    record = _normalize(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": []}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": []}]),
        }
    )
    assert record.span_type == "LLM" and record.model == "gpt-4o-2024-08-06"
    assert json.loads(record.input) == [{"role": "user", "content": ""}]
    assert record.total_tokens == 120 and record.cost_usd > 0


def test_openllmetry_indexed_prompts_and_total_tokens():
    record = _normalize(
        {
            "gen_ai.system": "OpenAI",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "hi",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "hello",
            "gen_ai.usage.prompt_tokens": 5,
            "gen_ai.usage.completion_tokens": 2,
            "llm.usage.total_tokens": 7,
        }
    )
    assert json.loads(record.input) == [{"role": "user", "content": "hi"}]
    assert json.loads(record.output) == [{"role": "assistant", "content": "hello"}]
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (5, 2, 7)
    assert record.input_source is None  # built from several attributes, all kept


def test_langfuse_keys():
    record = _normalize(
        {
            "langfuse.observation.type": "generation",
            "langfuse.trace.tags": ["prod"],
            "langfuse.trace.metadata.tier": "gold",
            "langfuse.observation.input": '{"a": 1}',
            "langfuse.observation.model.name": "gpt-4o-mini",
        }
    )
    assert record.span_type == "LLM" and record.tags == ["prod"]
    assert record.metadata == {"tier": "gold"} and record.input == '{"a": 1}'
    assert record.model == "gpt-4o-mini"


def test_langfuse_usage_and_cost_details_and_json_metadata_values():
    # Langfuse's own usage keys, and what its OpenAI integration sends (OpenAI's usage).
    record = _normalize(
        {
            "langfuse.observation.usage_details": '{"input": 120, "output": 30, "total": 150}',
            "langfuse.observation.cost_details": '{"input": 0.25, "output": 0.5}',
            "langfuse.trace.metadata.plan": '"pro"',
            "langfuse.trace.metadata.limits": '{"rpm": 5}',
            "langfuse.trace.metadata.raw": "not json",
        }
    )
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (120, 30, 150)
    assert record.cost_usd == 0.75
    assert record.metadata == {"plan": "pro", "limits": {"rpm": 5}, "raw": "not json"}
    record = _normalize(
        {
            "langfuse.observation.model.name": "gpt-4o-mini",
            "langfuse.observation.usage_details": json.dumps(
                {
                    "prompt_tokens": 1000,
                    "completion_tokens": 500,
                    "total_tokens": 1500,
                    "prompt_tokens_details": None,
                }
            ),
        }
    )
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (1000, 500, 1500)
    assert record.span_type == "LLM" and record.cost_usd is not None and record.cost_usd > 0
    # A key of its own wins over the object; an object that is not JSON is ignored.
    record = _normalize(
        {"gen_ai.usage.input_tokens": 7, "langfuse.observation.usage_details": '{"input": 120}'}
    )
    assert record.input_tokens == 7
    assert _normalize({"langfuse.observation.usage_details": "{oops"}).input_tokens is None


def test_client_costs():
    assert (
        _normalize({"gen_ai.usage.input_cost": 0.25, "gen_ai.usage.output_cost": 0.5}).cost_usd
        == 0.75
    )


def test_error_from_status_or_exception_event():
    assert _normalize({}, error=True).status == "error"
    record = _normalize({}, events=[("exception", BASE_NS, {"exception.type": "KeyError"})])
    assert record.status == "error" and record.status_message == "KeyError"
    assert _normalize({}).status == "ok"


def test_traceloop_association_properties_beside_session_and_user_are_metadata():
    record = _normalize(
        {
            "traceloop.association.properties.session_id": "conv-1",
            "traceloop.association.properties.user_id": "ana",
            "traceloop.association.properties.tier": "gold",
        }
    )
    assert (record.session_id, record.user_id) == ("conv-1", "ana")
    assert record.metadata == {"tier": "gold"}


def test_conversation_keys_only_for_traces_without_a_session_id():
    """The keys of inferred sessions are made for spans of traces no span of the export
    gives a session id; a child LLM span of a turn whose root names its session gets
    none (its chat input is not parsed again for nothing)."""
    chat = {
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "hi",
        "gen_ai.prompt.1.role": "assistant",
        "gen_ai.prompt.1.content": "hello",
        "gen_ai.prompt.2.role": "user",
        "gen_ai.prompt.2.content": "and now?",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "now this",
    }
    named, loose = new_trace_id(), new_trace_id()
    root = new_span_id()
    records = normalize_request(
        request(
            [
                span(named, root, attributes={"session.id": "s-1"}),
                span(named, new_span_id(), parent=root, attributes=chat),
                span(loose, new_span_id(), attributes=chat),
            ]
        )
    ).spans
    signals = {(r.trace_id, r.parent_span_id is None): r.session_signals for r in records}
    assert signals[(named, True)] is None and signals[(named, False)] is None
    keys = signals[(loose, True)]
    assert keys is not None and len(keys.offers) == 1
    assert [signal for _, signal in keys.asks] == ["history"]
