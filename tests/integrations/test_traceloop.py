"""OpenLLMetry: ``traceloop-sdk``, unmodified, exporting OTLP/HTTP to Threadline.

``Traceloop.init`` points its exporter at ``<api_endpoint>/v1/traces`` with the
project key in ``headers``; telemetry, metrics and logs are off so that nothing leaves
the machine. Each turn is a ``@workflow``; the session and user are association
properties (``traceloop.association.properties.*``), one more property is metadata.
Its OpenAI instrumentation (0.62) writes ``gen_ai.input.messages`` /
``gen_ai.output.messages`` in GenAI parts and ``gen_ai.usage.*`` on ``openai.chat``
spans; the older indexed ``gen_ai.prompt.N.*`` form is covered by the unit tests
(``tests/server/test_messages.py``).
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

pytest.importorskip("traceloop.sdk")

# Nothing may reach Traceloop's cloud or its telemetry: these programs run offline.
OFFLINE = {
    "TRACELOOP_TELEMETRY": "false",
    "TRACELOOP_METRICS_ENABLED": "false",
    "TRACELOOP_LOGGING_ENABLED": "false",
    "TRACELOOP_SUPPRESS_WARNINGS": "true",
}


def main() -> None:
    """The program: two conversations, each turn a Traceloop workflow."""
    import openai
    from traceloop.sdk import Traceloop
    from traceloop.sdk.decorators import workflow

    env = ProgramEnv.from_environ()
    Traceloop.init(
        app_name="support-bot",
        api_endpoint=env.threadline_url,
        headers={"Authorization": f"Bearer {env.api_key}"},
        disable_batch=True,  # each span is exported (and acknowledged) as it ends
        telemetry_enabled=False,
    )
    client = openai.OpenAI(base_url=env.openai_url, api_key="sk-fake", max_retries=0)

    @workflow(name="support_turn")
    def support_turn(question: str, history: list[dict[str, str]]) -> str:
        response = client.chat.completions.create(model=MODEL, messages=history)
        return response.choices[0].message.content

    for session in SESSIONS:
        replies: list[str] = []
        for index, question in enumerate(session.questions):
            Traceloop.set_association_properties(
                {
                    "session_id": env.session_id(session),
                    "user_id": session.user_id,
                    "channel": "chat",
                }
            )
            replies.append(support_turn(question, history_for(session, index, replies)))


def test_traceloop_app_sessions_users_messages_tokens_and_cost(server) -> None:
    with FakeOpenAI() as fake:
        env = ProgramEnv(server.base_url, server.api_key, fake.base_url, uuid.uuid4().hex)
        run_program("test_traceloop", env, **OFFLINE)
    assert len(fake.exchanges) == 4
    traces = check_sessions(server, env, fake.exchanges)
    check_transcripts(traces, fake.exchanges)
    exchanges = iter(fake.exchanges)
    for session in SESSIONS:
        for index, trace in enumerate(traces[session.suffix]):
            exchange = next(exchanges)
            assert trace["name"] == "support_turn.workflow"
            assert trace["metadata"] == {"channel": "chat"}
            # The workflow's traceloop.entity.input / output: its arguments and result.
            workflow_input = json.loads(trace["input_preview"])
            assert workflow_input["args"][0] == session.questions[index]
            assert json.loads(trace["output_preview"]) == exchange.reply
            # The LLM span: gen_ai.input.messages / output.messages in the one shape,
            # exactly the messages the program sent and the reply it got.
            llm = llm_span(trace)
            assert llm["input"] == exchange.request["messages"]
            assert llm["output"] == [
                {"role": "assistant", "content": exchange.reply, "finish_reason": "stop"}
            ]
            assert llm["attributes"]["gen_ai.provider.name"] == "openai"
            assert llm["attributes"]["traceloop.association.properties.user_id"] == (
                session.user_id
            )


if __name__ == "__main__":
    main()
