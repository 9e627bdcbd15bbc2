"""An app on the plain OpenTelemetry SDK with OpenTelemetry's OpenAI instrumentor
(``opentelemetry-instrumentation-openai-v2``), content capture on: the messages come
only as log events (``gen_ai.<role>.message``, ``gen_ai.choice``), which the server keeps
and joins to their ``chat`` span (ingest/log_events.py).

The program exports spans and logs with OpenTelemetry's own exporters, over OTLP/HTTP
or OTLP/gRPC (``TL_PROTOCOL``), each batch processor holding everything until the end,
then flushes the two providers in the order the test asks (``TL_ORDER``): events first
(the SDKs' default schedules make that the usual order), or spans first. Each turn is a
``support-turn`` span naming the conversation and user, with no messages of its own,
around one instrumented call (the second turn of a session streamed).
"""

from __future__ import annotations

import gzip
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ProjectClient, new_project_key, start_server, stop_server
from tests.integrations.conversation import (
    MODEL,
    SESSIONS,
    SYSTEM_PROMPT,
    ProgramEnv,
    check_sessions,
    check_transcripts,
    history_for,
    llm_span,
    run_program,
)
from tests.integrations.fake_openai import FakeOpenAI
from tests.otlp import new_span_id, new_trace_id, span

pytestmark = pytest.mark.slow

pytest.importorskip("opentelemetry.instrumentation.openai_v2")


def main() -> None:
    import openai
    from opentelemetry import trace
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    env = ProgramEnv.from_environ()
    if os.environ["TL_PROTOCOL"] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        metadata = (("authorization", f"Bearer {env.api_key}"),)
        address = os.environ["TL_GRPC"]
        span_exporter = OTLPSpanExporter(endpoint=address, insecure=True, headers=metadata)
        log_exporter = OTLPLogExporter(endpoint=address, insecure=True, headers=metadata)
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (
            OTLPLogExporter as HttpLogExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        headers = {"Authorization": f"Bearer {env.api_key}"}
        span_exporter = HttpSpanExporter(
            endpoint=f"{env.threadline_url}/v1/traces", headers=headers
        )
        log_exporter = HttpLogExporter(endpoint=f"{env.threadline_url}/v1/logs", headers=headers)
    resource = Resource.create({"service.name": "support-bot"})
    # Nothing is exported before the end: the test chooses the order.
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(span_exporter, schedule_delay_millis=600_000)
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(log_exporter, schedule_delay_millis=600_000)
    )
    OpenAIInstrumentor().instrument(
        tracer_provider=tracer_provider, logger_provider=logger_provider
    )
    tracer = trace.get_tracer("support-bot", tracer_provider=tracer_provider)
    client = openai.OpenAI(base_url=env.openai_url, api_key="sk-fake", max_retries=0)

    for session in SESSIONS:
        replies: list[str] = []
        for index in range(len(session.questions)):
            with tracer.start_as_current_span("support-turn") as turn:
                turn.set_attribute("gen_ai.conversation.id", env.session_id(session))
                turn.set_attribute("user.id", session.user_id)
                messages = history_for(session, index, replies)
                if index == 0:
                    response = client.chat.completions.create(model=MODEL, messages=messages)
                    replies.append(response.choices[0].message.content or "")
                else:
                    stream = client.chat.completions.create(
                        model=MODEL,
                        messages=messages,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                    replies.append(
                        "".join(c.delta.content or "" for chunk in stream for c in chunk.choices)
                    )
    providers = [logger_provider, tracer_provider]
    if os.environ["TL_ORDER"] == "spans-first":
        providers.reverse()
    for provider in providers:  # each export is acknowledged once committed
        assert provider.force_flush()
    tracer_provider.shutdown()
    logger_provider.shutdown()


@pytest.fixture(params=["sqlite", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProjectClient]:
    """A project on a server of each store, with its gRPC receiver."""
    if request.param == "sqlite":
        yield request.getfixturevalue("server")
        return
    from tests.store.chdb_http import own_database_url

    url = own_database_url(tmp_path)
    key = new_project_key(url, "log-events")
    process = start_server(tmp_path / "data", tmp_path / "server.log", "--store", url)
    try:
        yield ProjectClient(process.base_url, key, process)
    finally:
        stop_server(process)


def _run(project: ProjectClient, protocol: str, order: str) -> tuple[ProgramEnv, FakeOpenAI]:
    with FakeOpenAI() as fake:
        env = ProgramEnv(project.base_url, project.api_key, fake.base_url, uuid.uuid4().hex)
        run_program(
            "test_otel_log_events",
            env,
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true",
            TL_PROTOCOL=protocol,
            TL_ORDER=order,
            TL_GRPC=project.process.grpc_address or "",
        )
    assert len(fake.exchanges) == 4
    return env, fake


@pytest.mark.parametrize("order", ["events-first", "spans-first"])
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_events_are_the_spans_messages_in_either_order(
    project: ProjectClient, protocol: str, order: str
) -> None:
    """Events before their spans are taken as the spans are prepared; events after
    them fill the stored model calls, written again: either way everything made from
    the span has them."""
    env, fake = _run(project, protocol, order)
    traces = check_sessions(project, env, fake.exchanges)  # tokens and cost, streamed too
    check_transcripts(traces, fake.exchanges)  # the session page's turns
    exchanges = iter(fake.exchanges)
    for session in SESSIONS:
        for index, trace in enumerate(traces[session.suffix]):
            exchange = next(exchanges)
            # Only the events said what was asked and answered: the previews too.
            assert (trace["input_preview_text"], trace["output_preview_text"]) == (
                session.questions[index],
                exchange.reply,
            )
            llm = llm_span(trace)
            assert llm["input"] == exchange.request["messages"]
            assert llm["output"] == [
                {"role": "assistant", "content": exchange.reply, "finish_reason": "stop"}
            ]
            # As the SDK would have put them: the GenAI conventions' typed parts.
            sent = json.loads(llm["attributes"]["gen_ai.input.messages"])
            assert sent[0] == {
                "role": "system",
                "parts": [{"type": "text", "content": SYSTEM_PROMPT}],
            }
        found = project.get(f"/api/v1/sessions/{env.session_id(session)}")
        assert found["first_input_text"] == session.questions[0]
        replies = [e.reply for e in fake.exchanges]
        assert found["last_output_text"] == replies[3 if session.suffix == "b" else 1]
    # Search finds a session by what its model replied, and a trace by what was asked.
    hits = project.get("/api/v1/sessions", q=fake.exchanges[3].reply)["items"]
    assert [h["session_id"] for h in hits] == [env.session_id(SESSIONS[1])]
    asked = project.get("/api/v1/traces", q="expired")["items"]  # session b's second
    assert [t["trace_id"] for t in asked] == [traces["b"][1]["trace_id"]]


def test_other_records_are_discarded_json_and_gzip(project: ProjectClient) -> None:
    """OTLP/JSON, gzipped: a GenAI event (by the older ``event.name`` attribute) of a
    stored model call is kept and shown; a record of another name, and a GenAI one
    without a span id, are not. An event naming a stored plain span is shown nowhere:
    GenAI events belong to model calls (store/genai_events.py)."""
    trace_id, call_id, turn_id = new_trace_id(), new_span_id(), new_span_id()
    call = {"gen_ai.operation.name": "chat", "gen_ai.request.model": MODEL}
    project.send(
        [
            span(trace_id, turn_id, name="support-turn"),
            span(trace_id, call_id, parent=turn_id, name=f"chat {MODEL}", attributes=call),
        ]
    )

    def record(name: str, text: str, span_id: str = call_id) -> dict:
        return {
            "timeUnixNano": "1700000000000000000",
            "traceId": trace_id,
            "spanId": span_id,
            "attributes": [{"key": "event.name", "value": {"stringValue": name}}],
            "body": {
                "kvlistValue": {"values": [{"key": "content", "value": {"stringValue": text}}]}
            },
        }

    body = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            record("gen_ai.user.message", "kept"),
                            record("app.audit", "not an event of ours"),
                            record("gen_ai.user.message", "no span", span_id=""),
                            record("gen_ai.user.message", "not a model call", span_id=turn_id),
                        ]
                    }
                ]
            }
        ]
    }
    response = project.http.post(
        "/v1/logs",
        content=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {}
    spans = {s["span_id"]: s for s in project.get(f"/api/v1/traces/{trace_id}")["spans"]}
    assert spans[call_id]["span_type"] == "LLM"
    assert spans[call_id]["input"] == [{"role": "user", "content": "kept"}]
    assert spans[call_id]["output"] is None
    assert (spans[turn_id]["input"], spans[turn_id]["output"]) == (None, None)
    # No key, no export.
    refused = httpx.post(
        f"{project.base_url}/v1/logs", content=b"", headers={"Content-Type": "application/json"}
    )
    assert refused.status_code == 401


if __name__ == "__main__":
    main()
