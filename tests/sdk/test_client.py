"""Threadline.initialize / flush / shutdown: export over real OTLP/HTTP, env vars,
idempotency, disabled mode, cooperating with an existing tracer provider."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from threadline import Threadline, observe, semconv
from threadline.sdk.config import ENVIRONMENT

from .conftest import Recorded


@dataclass
class Receiver:
    """A minimal OTLP/HTTP endpoint on loopback that remembers what it was sent."""

    base_url: str
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def span_names(self) -> list[str]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        names = []
        for _, _, body in self.requests:
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    names += [span.name for span in scope_spans.spans]
        return names


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    captured: list[tuple[str, dict[str, str], bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            captured.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Receiver(f"http://127.0.0.1:{httpd.server_address[1]}", captured)
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("THREADLINE_API_KEY", "THREADLINE_BASE_URL", "THREADLINE_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    Threadline._reset_for_tests()
    yield
    Threadline._reset_for_tests()


@observe
def greet(name: str) -> str:
    return f"hi {name}"


def test_exports_otlp_protobuf_with_bearer_key(fresh: None, receiver: Receiver) -> None:
    Threadline.initialize(
        project_api_key="key-1", base_url=receiver.base_url + "/", instrument=False
    )
    greet("ada")
    assert Threadline.flush() is True
    path, headers, _ = receiver.requests[0]
    assert path == "/v1/traces"  # the port and the path come from base_url
    assert headers["authorization"] == "Bearer key-1"
    assert headers["content-type"] == "application/x-protobuf"
    assert receiver.span_names() == ["greet"]


def test_key_and_url_from_environment(
    fresh: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_API_KEY", "env-key")
    monkeypatch.setenv("THREADLINE_BASE_URL", receiver.base_url)
    Threadline.initialize(instrument=False)
    greet("bob")
    Threadline.flush()
    assert receiver.requests[0][1]["authorization"] == "Bearer env-key"


def test_settings_resolution() -> None:
    from threadline.sdk.config import resolve

    default = resolve(environ={})
    assert default.base_url == "http://127.0.0.1:8000"
    assert default.traces_endpoint == "http://127.0.0.1:8000/v1/traces"
    assert default.headers() == {} and default.disabled is False
    env = {
        "THREADLINE_BASE_URL": "https://obs.example:9443/tl/",
        "THREADLINE_API_KEY": "e",
        "THREADLINE_DISABLED": "true",
    }
    from_env = resolve(environ=env)
    assert from_env.traces_endpoint == "https://obs.example:9443/tl/v1/traces"
    assert from_env.api_key == "e" and from_env.disabled is True
    explicit = resolve("a", "http://h:1/v1/traces", False, environ=env)
    assert (explicit.api_key, explicit.base_url, explicit.disabled) == ("a", "http://h:1", False)


def test_the_default_url_is_where_the_server_listens_by_default() -> None:
    # "localhost" may resolve to ::1 first, where a default server does not listen.
    from threadline.sdk.config import resolve
    from threadline.server.settings import Settings

    server = Settings.resolve({}, {})
    assert resolve(environ={}).base_url == f"http://{server.host}:{server.port}"


def test_second_initialize_is_a_noop(recorded: Recorded) -> None:
    other = InMemorySpanExporter()
    Threadline.initialize(span_exporter=other)
    greet("x")
    assert [s.name for s in recorded.spans()] == ["greet"]
    assert other.get_finished_spans() == ()


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_disabled_mode_runs_code_untouched(
    fresh: None, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    if how == "environment":
        monkeypatch.setenv("THREADLINE_DISABLED", "1")
        Threadline.initialize(span_exporter=exporter)
    else:
        Threadline.initialize(span_exporter=exporter, disabled=True)

    def numbers():
        yield 1

    traced_numbers = observe(numbers)
    gen = traced_numbers()
    assert type(gen).__name__ == "generator" and gen.gi_code is numbers.__code__
    assert greet("x") == "hi x"
    with Threadline.start_as_current_span("block") as span:
        assert not span.is_recording()
        Threadline.set_trace_session_id("s")  # harmless
    assert Threadline.flush() is True
    assert exporter.get_finished_spans() == ()


def test_shutdown_then_code_still_runs(fresh: None) -> None:
    exporter = InMemorySpanExporter()
    Threadline.initialize(span_exporter=exporter, instrument=False)
    greet("a")
    Threadline.shutdown()
    assert [s.name for s in exporter.get_finished_spans()] == ["greet"]
    assert greet("b") == "hi b"
    Threadline.shutdown()  # twice is fine


def test_observe_before_initialize_is_harmless(fresh: None) -> None:
    assert greet("early") == "hi early"
    assert Threadline.flush() is True


def _run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_reuses_an_existing_global_provider() -> None:
    # A subprocess: the global tracer provider can be set only once per process.
    out = _run_python(f"""
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from threadline import Threadline, observe

        app_exporter = InMemorySpanExporter()
        app_provider = TracerProvider()
        app_provider.add_span_processor(SimpleSpanProcessor(app_exporter))
        trace.set_tracer_provider(app_provider)

        ours = InMemorySpanExporter()
        Threadline.initialize(span_exporter=ours, instrument=False)

        @observe(session_id="s1")
        def turn():
            with trace.get_tracer("app").start_as_current_span("app-span"):
                pass

        turn()
        Threadline.shutdown()
        with trace.get_tracer("app").start_as_current_span("after-shutdown"):
            pass
        print(json.dumps({{
            "same_provider": trace.get_tracer_provider() is app_provider,
            "app": sorted(s.name for s in app_exporter.get_finished_spans()),
            "ours": sorted(s.name for s in ours.get_finished_spans()),
            "session": [s.attributes.get("{semconv.SESSION_ID}")
                        for s in ours.get_finished_spans()],
            "app_after": [s.name for s in app_exporter.get_finished_spans()][-1],
        }}))
    """)
    result = json.loads(out)
    assert result["same_provider"]
    assert result["ours"] == ["app-span", "turn"]
    assert result["app"] == ["after-shutdown", "app-span", "turn"]
    assert result["session"] == ["s1", "s1"]
    assert result["app_after"] == "after-shutdown"  # our shutdown left the app's provider alone


def test_sets_the_global_provider_when_none_is_set() -> None:
    out = _run_python("""
        from opentelemetry import trace
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from threadline import Threadline

        ours = InMemorySpanExporter()
        Threadline.initialize(span_exporter=ours, instrument=False)
        with trace.get_tracer("lib").start_as_current_span("lib-span"):
            Threadline.set_trace_session_id("s2")
        Threadline.flush()
        span, = ours.get_finished_spans()
        print(span.name, span.attributes["threadline.session.id"])
    """)
    assert out.split() == ["lib-span", "s2"]


def test_docs_list_every_environment_variable_as_the_sdk_reads_it():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "sdk.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in doc.splitlines() if line.startswith("| `")}
    for variable, meaning, default in ENVIRONMENT:
        row = rows.get(f"`{variable}`")
        assert row is not None, variable
        assert f"| {meaning} |" in row and default in row, row
