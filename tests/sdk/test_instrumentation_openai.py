"""Auto-instrumentation: the real ``openai`` client against a local fake server.

The fake speaks the real ``/v1/chat/completions`` wire format (with ``usage``), so the
maintained OpenTelemetry instrumentor produces exactly the spans it would in production.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from threadline import Threadline, observe, semconv
from threadline.sdk.config import ENV_CAPTURE_CONTENT, OTEL_CAPTURE_CONTENT, capture_content_enabled
from threadline.sdk.genai_events import EventsToSpanAttributes

openai = pytest.importorskip("openai")
pytest.importorskip("opentelemetry.instrumentation.openai_v2")

COMPLETION = {
    "id": "chatcmpl-test",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Hello there!"},
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}


@pytest.fixture
def fake_openai() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(json.loads(body))
            assert self.path == "/v1/chat/completions"
            payload = json.dumps(COMPLETION).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", received
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    monkeypatch.delenv("THREADLINE_DISABLED", raising=False)
    Threadline._reset_for_tests()
    memory = InMemorySpanExporter()
    Threadline.initialize(span_exporter=memory, instrument=["openai"])
    yield memory
    Threadline._reset_for_tests()  # also uninstruments openai


def test_openai_span_nests_under_observe_and_carries_the_session(
    fake_openai: tuple[str, list[dict]], exporter: InMemorySpanExporter
) -> None:
    base_url, received = fake_openai
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)

    @observe
    def handle_turn(conversation_id: str, message: str) -> str:
        Threadline.set_trace_session_id(conversation_id)
        response = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": message}]
        )
        return response.choices[0].message.content

    assert handle_turn("conv-openai", "hi") == "Hello there!"
    assert received[0]["model"] == "gpt-4o-mini"
    Threadline.flush()
    spans = exporter.get_finished_spans()
    root = next(s for s in spans if s.name == "handle_turn")
    llm = next(s for s in spans if s is not root)
    assert llm.parent is not None and llm.parent.span_id == root.context.span_id
    assert llm.context.trace_id == root.context.trace_id
    attributes = dict(llm.attributes)
    assert attributes[semconv.SESSION_ID] == "conv-openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["gen_ai.usage.output_tokens"] == 3
    assert root.attributes[semconv.SESSION_ID] == "conv-openai"


def test_instrumentation_is_undone_on_reset(exporter: InMemorySpanExporter) -> None:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    assert OpenAIInstrumentor().is_instrumented_by_opentelemetry
    Threadline._reset_for_tests()
    assert not OpenAIInstrumentor().is_instrumented_by_opentelemetry


def test_missing_instrumentors_are_skipped_silently(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from threadline.sdk import instrument

    monkeypatch.setitem(instrument.INSTRUMENTORS, "nope", ("no.such.module", "X"))
    assert instrument.enable_instrumentors(["nope"], TracerProvider()) == []


# --- the messages of a call, on its span ---------------------------------------------


def _chat_span(exporter: InMemorySpanExporter) -> dict:
    (span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    return dict(span.attributes)


def test_the_call_s_messages_are_on_its_span_as_genai_parts(
    fake_openai: tuple[str, list[dict]], exporter: InMemorySpanExporter
) -> None:
    base_url, _ = fake_openai
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    image = "https://example.invalid/parcel.png"
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": image}},
                ],
            },
        ],
    )
    Threadline.flush()
    attributes = _chat_span(exporter)
    assert json.loads(attributes["gen_ai.input.messages"]) == [
        {"role": "developer", "parts": [{"type": "text", "content": "Be brief."}]},
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "What is in this picture?"},
                {"type": "uri", "modality": "image", "uri": image},
            ],
        },
    ]
    assert json.loads(attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Hello there!"}],
            "finish_reason": "stop",
        }
    ]


def test_content_capture_off_records_no_messages(
    fake_openai: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("THREADLINE_DISABLED", raising=False)
    Threadline._reset_for_tests()
    memory = InMemorySpanExporter()
    Threadline.initialize(span_exporter=memory, instrument=["openai"], capture_content=False)
    try:
        base_url, _ = fake_openai
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "my secret"}]
        )
        Threadline.flush()
        attributes = _chat_span(memory)
        assert attributes["gen_ai.usage.input_tokens"] == 12  # the span itself is there
        assert not [k for k in attributes if "messages" in k]
        assert "my secret" not in repr(attributes) and "Hello there" not in repr(attributes)
    finally:
        Threadline._reset_for_tests()


def test_opentelemetry_s_content_variable_is_left_as_the_application_set_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    monkeypatch.delenv("THREADLINE_DISABLED", raising=False)
    monkeypatch.delenv(OTEL_CAPTURE_CONTENT, raising=False)
    Threadline._reset_for_tests()
    try:
        Threadline.initialize(span_exporter=InMemorySpanExporter(), instrument=["openai"])
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        assert OpenAIInstrumentor().is_instrumented_by_opentelemetry
        assert OTEL_CAPTURE_CONTENT not in os.environ
    finally:
        Threadline._reset_for_tests()


@pytest.mark.parametrize(
    ("argument", "environ", "expected"),
    [
        (None, {}, True),
        (False, {}, False),
        (True, {OTEL_CAPTURE_CONTENT: "false"}, True),
        (None, {ENV_CAPTURE_CONTENT: "off"}, False),
        (None, {ENV_CAPTURE_CONTENT: "0"}, False),
        (None, {ENV_CAPTURE_CONTENT: "true", OTEL_CAPTURE_CONTENT: "false"}, True),
        (None, {OTEL_CAPTURE_CONTENT: "false"}, False),
        (None, {OTEL_CAPTURE_CONTENT: "False"}, False),
        (None, {OTEL_CAPTURE_CONTENT: "true"}, True),
        (False, {ENV_CAPTURE_CONTENT: "true"}, False),
    ],
)
def test_capture_content_argument_then_ours_then_opentelemetry_s_variable(
    argument: bool | None, environ: dict[str, str], expected: bool
) -> None:
    assert capture_content_enabled(argument, environ) is expected


def test_events_reach_the_application_s_logger_provider_too_and_only_open_spans_change() -> None:
    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import set_span_in_context

    application = LoggerProvider(shutdown_on_exit=False)
    received = InMemoryLogRecordExporter()
    application.add_log_record_processor(SimpleLogRecordProcessor(received))
    ours = LoggerProvider(shutdown_on_exit=False)
    ours.add_log_record_processor(EventsToSpanAttributes(application))
    emitter = ours.get_logger("opentelemetry.instrumentation.openai_v2")
    span = TracerProvider().get_tracer("t").start_span("chat")
    context = set_span_in_context(span)
    said = {"content": "hi"}
    emitter.emit(LogRecord(event_name="gen_ai.user.message", body=said, context=context))
    emitter.emit(LogRecord(event_name="app.other", body="left alone", context=context))
    span.end()
    emitter.emit(LogRecord(event_name="gen_ai.user.message", body=said, context=context))
    assert json.loads(span.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]}
    ]
    assert "gen_ai.output.messages" not in span.attributes
    forwarded = received.get_finished_logs()
    assert [r.log_record.event_name for r in forwarded] == [
        "gen_ai.user.message",
        "app.other",
        "gen_ai.user.message",
    ]
    assert forwarded[0].instrumentation_scope.name == "opentelemetry.instrumentation.openai_v2"


def test_an_async_stream_s_reply_is_on_its_span_once_the_stream_ends(
    exporter: InMemorySpanExporter,
) -> None:
    import asyncio

    from tests.integrations.fake_openai import FakeOpenAI

    async def ask(base_url: str) -> str:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
        )
        text = ""
        async for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
        await client.close()
        return text

    with FakeOpenAI() as fake:
        reply = asyncio.run(ask(fake.base_url))
    assert reply == "Answer 1: stream me"
    Threadline.flush()
    attributes = _chat_span(exporter)
    assert json.loads(attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "stream me"}]}
    ]
    assert json.loads(attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": reply}],
            "finish_reason": "stop",
        }
    ]


def test_an_app_on_the_plain_opentelemetry_sdk_can_use_the_processor_itself(
    fake_openai: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As integrations.md shows: its own tracer provider, a logger provider with the
    processor, the instrumentor enabled with both and OpenTelemetry's content variable."""
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    Threadline._reset_for_tests()
    monkeypatch.setenv(OTEL_CAPTURE_CONTENT, "true")
    memory = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(EventsToSpanAttributes())
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
    try:
        base_url, _ = fake_openai
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "plain otel"}]
        )
    finally:
        instrumentor.uninstrument()
    attributes = _chat_span(memory)
    assert json.loads(attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == "plain otel"
    assert "Hello there!" in attributes["gen_ai.output.messages"]
