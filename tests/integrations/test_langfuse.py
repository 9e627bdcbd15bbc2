"""Langfuse's Python SDK, unmodified, through its own OTLP path and Basic auth.

Pointing it at Threadline is three environment variables: ``LANGFUSE_BASE_URL`` (or the
older ``LANGFUSE_HOST``) the server's HTTP address, ``LANGFUSE_SECRET_KEY`` a Threadline
key, ``LANGFUSE_PUBLIC_KEY`` anything (it is not checked). The SDK exports to
``/api/public/otel/v1/traces`` with ``Authorization: Basic base64(public:secret)``.

The program is a Langfuse app as its docs write one: ``@observe`` on each turn,
``propagate_attributes`` for session, user, tags and metadata, a ``tool`` observation,
and the ``langfuse.openai`` drop-in client, whose generations carry model, usage and the
messages in ``langfuse.observation.*`` keys. During such a run the SDK calls no Langfuse
endpoint but the trace export (projects, media and scores are fetched or sent only when
an app asks for a trace URL, attaches media, or scores).
"""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest

from tests.integrations.conversation import (
    SESSIONS,
    ProgramEnv,
    check_sessions,
    history_for,
    llm_span,
    run_program,
)
from tests.integrations.fake_openai import FakeOpenAI
from tests.otlp import new_span_id, new_trace_id, request, span

pytestmark = pytest.mark.slow

pytest.importorskip("langfuse")

ORDER_ID = "1138"
LANGFUSE_PATH = "/api/public/otel/v1/traces"


def main() -> None:
    """The program: two conversations traced by Langfuse's SDK."""
    from langfuse import get_client, observe, propagate_attributes
    from langfuse.openai import OpenAI

    env = ProgramEnv.from_environ()
    client = OpenAI(base_url=env.openai_url, api_key="sk-fake", max_retries=0)

    @observe(name="lookup_order", as_type="tool")
    def lookup_order(order_id: str) -> dict[str, str]:
        return {"order_id": order_id, "status": "shipped"}

    @observe(name="support_turn")
    def support_turn(question: str, index: int, history: list[dict[str, str]]) -> str:
        if ORDER_ID in question:
            lookup_order(ORDER_ID)
        response = client.chat.completions.create(model="gpt-4o-mini", messages=history)
        return response.choices[0].message.content

    for session in SESSIONS:
        replies: list[str] = []
        for index, question in enumerate(session.questions):
            with propagate_attributes(
                session_id=env.session_id(session),
                user_id=session.user_id,
                tags=["support"],
                metadata={"plan": "pro", "turn": str(index)},
            ):
                replies.append(support_turn(question, index, history_for(session, index, replies)))
    langfuse = get_client()
    langfuse.flush()  # every span acknowledged (so committed) before the program exits
    langfuse.shutdown()


def test_langfuse_sessions_users_metadata_tags_types_messages_tokens_and_cost(server) -> None:
    with FakeOpenAI() as fake:
        env = ProgramEnv(server.base_url, server.api_key, fake.base_url, uuid.uuid4().hex)
        run_program(
            "test_langfuse",
            env,
            LANGFUSE_BASE_URL=server.base_url,
            LANGFUSE_PUBLIC_KEY="pk-lf-threadline",
            LANGFUSE_SECRET_KEY=server.api_key,
        )
    assert len(fake.exchanges) == 4
    traces = check_sessions(server, env, fake.exchanges)
    replies = iter(e.reply for e in fake.exchanges)
    for session in SESSIONS:
        answered: list[str] = []
        for index, (trace, question) in enumerate(
            zip(traces[session.suffix], session.questions, strict=True)
        ):
            reply = next(replies)
            history = history_for(session, index, answered)
            # The @observe span: Langfuse records the call's args and kwargs.
            root = next(s for s in trace["spans"] if s["parent_span_id"] is None)
            assert (trace["name"], root["span_type"]) == ("support_turn", "DEFAULT")
            assert root["input"] == {"args": [question, index, history], "kwargs": {}}
            assert root["output"] == reply
            # propagate_attributes: tags, and metadata values as the program gave them
            # (Langfuse sends each one JSON-encoded).
            assert trace["tags"] == ["support"]
            assert trace["metadata"] == {"plan": "pro", "turn": str(index)}
            # The langfuse.openai generation: messages, model and usage details.
            llm = llm_span(trace)
            assert llm["attributes"]["langfuse.observation.type"] == "generation"
            assert llm["input"] == history
            assert llm["output"] == [{"role": "assistant", "content": reply}]
            tools = [s for s in trace["spans"] if s["span_type"] == "TOOL"]
            if ORDER_ID in question:
                (tool,) = tools
                assert tool["name"] == "lookup_order"
                assert tool["input"] == {"args": [ORDER_ID], "kwargs": {}}
                assert tool["output"] == {"order_id": ORDER_ID, "status": "shipped"}
                assert tool["parent_span_id"] == root["span_id"]
            else:
                assert tools == []
            answered.append(reply)
    assert sum(ORDER_ID in q for s in SESSIONS for q in s.questions) == 1


def test_langfuse_basic_auth_takes_the_key_from_the_secret(server) -> None:
    trace_id = new_trace_id()
    body = request([span(trace_id, new_span_id(), name="basic")]).SerializeToString()

    def post(authorization: str | None):
        headers = {"Content-Type": "application/x-protobuf"}
        if authorization is not None:
            headers["Authorization"] = authorization
        return httpx.post(server.base_url + LANGFUSE_PATH, content=body, headers=headers)

    def basic(credentials: str) -> str:
        return "Basic " + base64.b64encode(credentials.encode()).decode()

    for refused in (
        None,
        basic(f"{server.api_key}:wrong"),
        basic("pk-lf-x:"),
        "Basic not-base64!",
        basic(server.api_key),
    ):
        response = post(refused)
        assert response.status_code == 401, (refused, response.text)
        assert "key" in response.json()["error"]
    assert server.http.get(f"/api/v1/traces/{trace_id}").status_code == 404
    assert post(basic(f"any-public-key:{server.api_key}")).status_code == 200
    assert post(f"Bearer {server.api_key}").status_code == 200
    assert server.get(f"/api/v1/traces/{trace_id}")["span_count"] == 1


if __name__ == "__main__":
    main()
