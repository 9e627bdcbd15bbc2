"""Chat messages from every convention, normalised into the one shape (pure functions).

Each test sends a span the way one convention writes a small tool-using chat, and
expects the same message list back: the shape ``docs/conventions.md`` documents.
"""

from __future__ import annotations

import json

import pytest

from tests.otlp import new_span_id, new_trace_id, request, span
from threadline.server.ingest import messages
from threadline.server.ingest.normalize import normalize_request

WEATHER_ARGS = '{"city": "Paris"}'
# The conversation every convention below encodes: a system prompt, a question, the
# model's tool call, the tool's result; and the model's answer as output.
CHAT_IN = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "call_1", "name": "weather", "arguments": WEATHER_ARGS}],
    },
    {"role": "tool", "content": "18C, sunny", "tool_call_id": "call_1"},
]
CHAT_OUT = [{"role": "assistant", "content": "18C and sunny.", "finish_reason": "stop"}]


def _normalize(attributes: dict):
    (record,) = normalize_request(
        request([span(new_trace_id(), new_span_id(), attributes=attributes)])
    ).spans
    return record


def _io(attributes: dict) -> tuple[list, list]:
    record = _normalize(attributes)
    assert record.input_source is None and record.output_source is None
    return json.loads(record.input), json.loads(record.output)


def test_genai_semconv_parts_and_system_instructions():
    attributes = {
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
        "gen_ai.input.messages": json.dumps(
            [
                {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
                {
                    "role": "assistant",
                    "parts": [
                        {
                            "type": "tool_call",
                            "id": "call_1",
                            "name": "weather",
                            "arguments": {"city": "Paris"},
                        }
                    ],
                },
                {
                    "role": "tool",
                    "parts": [
                        {"type": "tool_call_response", "id": "call_1", "response": "18C, sunny"}
                    ],
                },
            ]
        ),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "finish_reason": "stop",
                    "parts": [{"type": "text", "content": "18C and sunny."}],
                }
            ]
        ),
    }
    assert _io(attributes) == (CHAT_IN, CHAT_OUT)
    # The originals stay on the span.
    record = _normalize(attributes)
    assert record.attributes["gen_ai.input.messages"] == attributes["gen_ai.input.messages"]


def test_openllmetry_indexed_prompts_with_tool_calls():
    attributes = {
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "Be brief.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Weather in Paris?",
        "gen_ai.prompt.2.role": "assistant",
        "gen_ai.prompt.2.tool_calls.0.id": "call_1",
        "gen_ai.prompt.2.tool_calls.0.name": "weather",
        "gen_ai.prompt.2.tool_calls.0.arguments": WEATHER_ARGS,
        "gen_ai.prompt.3.role": "tool",
        "gen_ai.prompt.3.content": "18C, sunny",
        "gen_ai.prompt.3.tool_call_id": "call_1",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "18C and sunny.",
        "gen_ai.completion.0.finish_reason": "stop",
    }
    assert _io(attributes) == (CHAT_IN, CHAT_OUT)


def test_openllmetry_orders_indexes_numerically_and_reads_json_content_parts():
    attributes = {f"gen_ai.prompt.{i}.role": "user" for i in range(12)}
    attributes.update({f"gen_ai.prompt.{i}.content": f"m{i}" for i in range(12)})
    attributes["gen_ai.prompt.11.content"] = json.dumps(
        [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "u"}}]
    )
    found = messages.input_messages(attributes)
    assert [m["content"] for m in found[:11]] == [f"m{i}" for i in range(11)]
    assert found[11]["content"] == 'look\n{"type": "image_url", "image_url": {"url": "u"}}'


def test_openinference_indexed_messages_with_tool_calls():
    attributes = {
        "input.value": json.dumps({"model": "gpt-4o-mini", "messages": "..."}),
        "output.value": json.dumps({"choices": "..."}),
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "Be brief.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "Weather in Paris?",
        "llm.input_messages.2.message.role": "assistant",
        "llm.input_messages.2.message.tool_calls.0.tool_call.id": "call_1",
        "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "weather",
        "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments": WEATHER_ARGS,
        "llm.input_messages.3.message.role": "tool",
        "llm.input_messages.3.message.content": "18C, sunny",
        "llm.input_messages.3.message.tool_call_id": "call_1",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "18C and sunny.",
    }
    said, replied = _io(attributes)
    assert said == CHAT_IN
    assert replied == [{"role": "assistant", "content": "18C and sunny."}]


@pytest.mark.parametrize(
    "key",
    [
        "threadline.span.input",
        "lmnr.span.input",
        "langfuse.observation.input",
        "traceloop.entity.input",
    ],
)
def test_sdk_payloads_that_are_openai_message_lists(key):
    openai_style = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": WEATHER_ARGS},
                }
            ],
        },
        {"role": "tool", "content": "18C, sunny", "tool_call_id": "call_1"},
    ]
    record = _normalize({key: json.dumps(openai_style)})
    assert json.loads(record.input) == CHAT_IN and record.input_source is None


def test_anthropic_style_content_blocks():
    found = messages.from_value(
        [
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "tu_1",
                        "name": "weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "18C"}],
            },
        ]
    )
    assert found == [
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [{"id": "tu_1", "name": "weather", "arguments": WEATHER_ARGS}],
        },
        {"role": "user", "content": "18C", "tool_call_id": "tu_1"},
    ]


def test_openai_response_and_single_message_outputs():
    response = {
        "id": "x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "18C and sunny."}}],
    }
    record = _normalize({"lmnr.span.output": json.dumps(response)})
    assert json.loads(record.output) == [{"role": "assistant", "content": "18C and sunny."}]
    record = _normalize({"langfuse.observation.output": '{"role": "assistant", "content": "ok"}'})
    assert json.loads(record.output) == [{"role": "assistant", "content": "ok"}]


def test_a_list_of_openai_choices_as_output_messages():
    # lmnr's OpenAI instrumentation puts the response's choices in gen_ai.output.messages.
    choices = [
        {
            "finish_reason": "stop",
            "index": 0,
            "logprobs": None,
            "message": {
                "role": "assistant",
                "content": "18C and sunny.",
                "refusal": None,
                "tool_calls": None,
            },
        }
    ]
    record = _normalize({"gen_ai.output.messages": json.dumps(choices)})
    assert json.loads(record.output) == [
        {"role": "assistant", "content": "18C and sunny.", "finish_reason": "stop"}
    ]
    assert messages.from_value([{"index": 0, "message": {"content": "no role"}}]) is None


def test_the_shape_is_a_fixed_point():
    assert messages.from_value(CHAT_IN) == CHAT_IN
    assert messages.from_value(CHAT_OUT) == CHAT_OUT


def test_message_attributes_win_over_payloads():
    record = _normalize(
        {
            "input.value": "Weather in Paris?",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "Weather in Paris?",
        }
    )
    assert json.loads(record.input) == [{"role": "user", "content": "Weather in Paris?"}]
    record = _normalize(
        {
            "gen_ai.input.messages": json.dumps([{"role": "user", "content": "new"}]),
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "old",
        }
    )
    assert json.loads(record.input) == [{"role": "user", "content": "new"}]


@pytest.mark.parametrize(
    "payload",
    [
        "plain text with no JSON",
        '{"conversation_id": "c1", "messages": [{"role": "user", "content": "hi"}]}',
        '[{"role": "user", "content": "hi"}, {"no": "role"}]',
        '[{"role": "user", "content": "unterminated"',
        "[" * 5000 + "]" * 5000,
        "[" * 100_000 + '{"role": "user", "content": "deep"}' + "]" * 100_000,
    ],
)
def test_payloads_that_are_not_message_lists_stay_as_sent(payload):
    record = _normalize({"threadline.span.input": payload})
    assert (record.input, record.input_source) == (payload, "threadline.span.input")


def test_bad_message_attributes_fall_back_to_the_payload():
    record = _normalize(
        {
            "gen_ai.input.messages": '[{"role": "user"' + "[" * 100_000,
            "gen_ai.prompt.0.content": "no role",
            "input.value": "the payload",
        }
    )
    assert (record.input, record.input_source) == ("the payload", "input.value")


def test_messages_already_in_the_shape_are_kept_as_sent_and_stored_once():
    sent = json.dumps(CHAT_IN, indent=1)
    record = _normalize(
        {"gen_ai.input.messages": sent, "threadline.span.output": json.dumps(CHAT_OUT)}
    )
    assert (record.input, record.input_source) == (sent, "gen_ai.input.messages")
    assert record.output_source == "threadline.span.output"
    # With system instructions to put first, the stored input is no attribute's text.
    record = _normalize(
        {
            "gen_ai.input.messages": json.dumps(CHAT_IN[1:]),
            "gen_ai.system_instructions": "Be brief.",
        }
    )
    assert json.loads(record.input) == CHAT_IN and record.input_source is None
