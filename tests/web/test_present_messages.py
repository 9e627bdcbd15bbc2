"""How the UI reads chat messages: the one shape ingest stores (pure, no browser)."""

from __future__ import annotations

from threadline.server.conversation import Message, messages


def test_normalised_messages_with_a_tool_call_and_its_result():
    stored = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [{"id": "c1", "name": "weather", "arguments": '{"city": "Paris"}'}],
        },
        {"role": "tool", "content": "18C", "tool_call_id": "c1"},
    ]
    assert messages(stored) == [
        Message("user", "Weather in Paris?"),
        Message("assistant", 'Checking.\n→ weather({"city": "Paris"})'),
        Message("tool", "18C"),
    ]


def test_function_arguments_holding_messages_show_the_messages():
    value = {"conversation_id": "c1", "messages": [{"role": "user", "content": "hi"}]}
    assert messages(value) == [Message("user", "hi")]


def test_values_that_are_not_messages():
    assert messages({"question": "hi"}) is None
    assert messages("hi") is None
    assert messages([]) is None
