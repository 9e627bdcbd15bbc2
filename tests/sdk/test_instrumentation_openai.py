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
