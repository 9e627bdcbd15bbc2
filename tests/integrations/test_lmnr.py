"""Laminar's ``lmnr`` SDK, unmodified, over both of its transports: its default OTLP/gRPC
exporter and OTLP/HTTP (``force_http=True``).

The program decorates each turn with ``@observe`` (``lmnr.span.input``/``output``,
``lmnr.span.type``), sets the trace's session, user and metadata through ``Laminar``
(``lmnr.association.properties.*``), tags the turn, calls a ``TOOL`` span on a question
about an order, and lets lmnr's built-in OpenAI instrumentation record the LLM call
(``gen_ai.input.messages``/``gen_ai.output.messages`` and usage, no ``lmnr.span.input``).

lmnr drops a port written inside ``base_url``; the port goes in ``grpc_port`` (or
``http_port`` with ``force_http=True``). During a traced run lmnr calls no Laminar
endpoint but the trace export: its HTTP client serves evaluations, datasets, tags and
rollouts, which a traced app does not call.
"""

from __future__ import annotations

import os
import uuid

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

pytestmark = pytest.mark.slow

pytest.importorskip("lmnr")

ORDER_ID = "1138"


def main() -> None:
    """The program: two conversations, sent by lmnr over the transport it is given."""
    import openai
    from lmnr import Instruments, Laminar, observe

    env = ProgramEnv.from_environ()
    transport, port = os.environ["TL_LMNR_TRANSPORT"], int(os.environ["TL_LMNR_PORT"])
    if transport == "grpc":
        Laminar.initialize(
            project_api_key=env.api_key,
            base_url="http://127.0.0.1",
            grpc_port=port,
            instruments={Instruments.OPENAI},
        )
    else:
        Laminar.initialize(
            project_api_key=env.api_key,
            base_url="http://127.0.0.1",
            http_port=port,
            force_http=True,
            instruments={Instruments.OPENAI},
        )
    client = openai.OpenAI(base_url=env.openai_url, api_key="sk-fake", max_retries=0)

    @observe(name="lookup_order", span_type="TOOL")
    def lookup_order(order_id: str) -> dict[str, str]:
        return {"order_id": order_id, "status": "shipped"}

    @observe(name="support_turn", tags=["support"], ignore_inputs=["history"])
    def support_turn(
        session_id: str, user_id: str, question: str, index: int, history: list[dict[str, str]]
    ) -> str:
        Laminar.set_trace_session_id(session_id)
        Laminar.set_trace_user_id(user_id)
        Laminar.set_trace_metadata({"plan": "pro", "turn": index})
        if ORDER_ID in question:
            lookup_order(ORDER_ID)
        response = client.chat.completions.create(model="gpt-4o-mini", messages=history)
        return response.choices[0].message.content

    for session in SESSIONS:
        replies: list[str] = []
        for index, question in enumerate(session.questions):
            replies.append(
                support_turn(
                    env.session_id(session),
                    session.user_id,
                    question,
                    index,
                    history_for(session, index, replies),
                )
            )
    Laminar.flush()  # every span acknowledged (so committed) before the program exits
    Laminar.shutdown()


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_lmnr_sessions_users_metadata_tags_types_messages_tokens_and_cost(
    server, transport: str
) -> None:
    process = server.process
    port = (
        (process.grpc_address or "").rsplit(":", 1)[-1]
        if transport == "grpc"
        else (process.base_url.rsplit(":", 1)[-1])
    )
    with FakeOpenAI() as fake:
        env = ProgramEnv(server.base_url, server.api_key, fake.base_url, uuid.uuid4().hex)
        run_program("test_lmnr", env, TL_LMNR_TRANSPORT=transport, TL_LMNR_PORT=port)
    assert len(fake.exchanges) == 4
    traces = check_sessions(server, env, fake.exchanges)
    replies = iter(e.reply for e in fake.exchanges)
    for session in SESSIONS:
        answered: list[str] = []
        for index, (trace, question) in enumerate(
            zip(traces[session.suffix], session.questions, strict=True)
        ):
            reply = next(replies)
            # The @observe span: its arguments and return value, tags and trace metadata.
            root = next(s for s in trace["spans"] if s["parent_span_id"] is None)
            assert (trace["name"], root["span_type"]) == ("support_turn", "DEFAULT")
            assert root["input"] == {
                "session_id": env.session_id(session),
                "user_id": session.user_id,
                "question": question,
                "index": index,
            }
            assert root["output"] == reply
            assert trace["tags"] == ["support"]
            assert trace["metadata"] == {"plan": "pro", "turn": index}
            # The built-in OpenAI instrumentation's LLM span: messages in the one shape.
            llm = llm_span(trace)
            assert llm["input"] == history_for(session, index, answered)
            assert llm["output"] == [
                {"role": "assistant", "content": reply, "finish_reason": "stop"}
            ]
            assert "lmnr.span.input" not in llm["attributes"]
            assert llm["attributes"]["lmnr.span.path"] == ["support_turn", llm["name"]]
            tools = [s for s in trace["spans"] if s["span_type"] == "TOOL"]
            if ORDER_ID in question:
                (tool,) = tools
                assert tool["name"] == "lookup_order"
                assert tool["input"] == {"order_id": ORDER_ID}
                assert tool["output"] == {"order_id": ORDER_ID, "status": "shipped"}
                assert tool["parent_span_id"] == root["span_id"]
            else:
                assert tools == []
            answered.append(reply)
    assert sum(ORDER_ID in q for s in SESSIONS for q in s.questions) == 1
    assert "Traceback" not in process.log()


if __name__ == "__main__":
    main()
