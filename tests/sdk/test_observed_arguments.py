"""A turn function that takes its API client as an argument, as a newcomer's first app
does: the SDK records the client as its repr, and the lists and the session page still
read the user's message out of the arguments, not the JSON of all of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from threadline import Threadline, observe


class ChatClient:
    """Stands for ``openai.OpenAI``: an object JSON cannot hold."""


@pytest.fixture
def fresh_sdk() -> Iterator[None]:
    Threadline._reset_for_tests()
    yield
    Threadline._reset_for_tests()


@observe()
def handle_turn(client: ChatClient, conversation_id: str, user_message: str) -> str:
    Threadline.set_trace_session_id(conversation_id)
    Threadline.set_trace_user_id("ana")
    return f"You said: {user_message}"


def test_a_client_argument_leaves_the_users_message_as_the_preview(
    server: Any, fresh_sdk: None
) -> None:
    Threadline.initialize(
        project_api_key=server.api_key, base_url=server.base_url, instrument=False
    )
    client = ChatClient()
    handle_turn(client, "conv-client-arg", "What is a span?")
    handle_turn(client, "conv-client-arg", "And a session?")
    assert Threadline.flush() is True

    traces = server.get("/api/v1/traces", session_id="conv-client-arg")["items"]
    # the argument as recorded: the client's repr beside the message
    detail = server.get(f"/api/v1/traces/{traces[0]['trace_id']}")
    assert "ChatClient object at 0x" in str(detail["spans"][0]["input"])
    assert sorted(t["input_preview_text"] for t in traces) == ["And a session?", "What is a span?"]
    session = server.get("/api/v1/sessions", user_id="ana")["items"][0]
    assert session["session_id"] == "conv-client-arg"
    assert session["first_input_text"] == "What is a span?"
