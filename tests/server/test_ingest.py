"""OTLP/HTTP ingest against the real server: encodings, exporters, field mapping."""

from __future__ import annotations

import gzip
import json

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.otlp import BASE_NS, new_span_id, new_trace_id, request, span, to_json


def _one_trace(session: str = "s-1") -> tuple[str, list]:
    trace_id = new_trace_id()
    root, child = new_span_id(), new_span_id()
    spans = [
        span(
            trace_id,
            root,
            name="handle_turn",
            start_ns=BASE_NS,
            end_ns=BASE_NS + 5_000_000,
            attributes={
                "threadline.session.id": session,
                "threadline.user.id": "ana",
                "threadline.span.input": json.dumps({"message": "hi"}),
                "threadline.span.output": json.dumps("hello!"),
            },
        ),
        span(
            trace_id,
            child,
            parent=root,
            name="chat gpt-4o-mini",
            start_ns=BASE_NS + 1_000_000,
            end_ns=BASE_NS + 4_000_000,
            attributes={
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 100,
            },
        ),
    ]
    return trace_id, spans


def test_protobuf_export_is_stored_with_every_field(server):
    trace_id, spans = _one_trace()
    response = server.export(request(spans).SerializeToString())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")

    trace = server.get(f"/api/v1/traces/{trace_id}")
    assert trace["trace_id"] == trace_id
    assert trace["name"] == "handle_turn"
    assert trace["session_id"] == "s-1" and trace["user_id"] == "ana"
    assert trace["span_count"] == 2 and trace["status"] == "ok"
    assert trace["duration_ms"] == 5.0
    assert trace["start_time"].endswith("Z")
    root, llm = trace["spans"]
    assert root["input"] == {"message": "hi"} and root["output"] == "hello!"
    assert root["parent_span_id"] is None and llm["parent_span_id"] == root["span_id"]
    assert llm["span_type"] == "LLM" and llm["model"] == "gpt-4o-mini"
    assert (llm["input_tokens"], llm["output_tokens"], llm["total_tokens"]) == (1000, 100, 1100)
    # genai-prices: gpt-4o-mini is $0.15 / $0.60 per million input / output tokens.
    assert abs(llm["cost_usd"] - (1000 * 0.15 + 100 * 0.60) / 1e6) < 1e-12
    assert trace["cost_usd"] == llm["cost_usd"]
    assert llm["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert root["resource"] == {"service.name": "test-app"}


def test_otlp_json_and_gzip_bodies(server):
    trace_id, spans = _one_trace("json-session")
    response = server.export(to_json(request(spans)), "application/json")
    assert response.status_code == 200, response.text
    assert response.json() == {}
    assert server.get(f"/api/v1/traces/{trace_id}")["session_id"] == "json-session"

    trace_id, spans = _one_trace("gzip-session")
    body = gzip.compress(request(spans).SerializeToString())
    response = server.export(body, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert server.get(f"/api/v1/traces/{trace_id}")["session_id"] == "gzip-session"


def test_opentelemetry_otlp_exporter(server):
    """OpenTelemetry's own OTLPSpanExporter, unmodified, as every OTel app sends."""
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-app"}))
    exporter = OTLPSpanExporter(
        endpoint=server.base_url + "/v1/traces",
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("turn") as root:
        root.set_attribute("threadline.session.id", "otel-session")
        with tracer.start_as_current_span("tool") as tool:
            tool.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")

    trace = server.get(f"/api/v1/traces/{trace_id}")
    assert trace["span_count"] == 2
    assert trace["status"] == "error" and trace["error_count"] == 1
    session = server.get("/api/v1/sessions/otel-session")
    assert session["trace_count"] == 1 and session["error_count"] == 1
    assert trace["spans"][0]["resource"]["service.name"] == "otel-app"


def test_exception_event_marks_error_and_is_kept(server):
    trace_id, root = new_trace_id(), new_span_id()
    failing = span(
        trace_id,
        root,
        name="turn",
        events=[
            (
                "exception",
                BASE_NS + 10,
                {
                    "exception.type": "ValueError",
                    "exception.message": "bad",
                    "exception.stacktrace": "Traceback ...",
                },
            )
        ],
    )
    server.send([failing])
    trace = server.get(f"/api/v1/traces/{trace_id}")
    assert trace["status"] == "error"
    (stored,) = trace["spans"]
    assert stored["status"] == "error" and stored["status_message"] == "ValueError: bad"
    (event,) = stored["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.stacktrace"] == "Traceback ..."


def test_laminar_keys_map(server):
    """Laminar's lmnr.* keys: association properties, span type, input and output."""
    trace_id, root, llm = new_trace_id(), new_span_id(), new_span_id()
    props = "lmnr.association.properties."
    spans = [
        span(
            trace_id,
            root,
            name="agent",
            attributes={
                props + "session_id": "lmnr-session",
                props + "user_id": "lmnr-user",
                props + "metadata.plan": "pro",
                props + "tags": ["beta", "eu"],
                "lmnr.span.type": "DEFAULT",
                "lmnr.span.input": json.dumps({"q": "weather?"}),
                "lmnr.span.output": json.dumps({"a": "sunny"}),
            },
        ),
        span(
            trace_id,
            llm,
            parent=root,
            name="llm",
            start_ns=BASE_NS + 10,
            attributes={
                "lmnr.span.type": "LLM",
                "gen_ai.response.model": "unknown-model-xyz",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.output_tokens": 5,
            },
        ),
    ]
    server.send(spans)
    trace = server.get(f"/api/v1/traces/{trace_id}")
    assert trace["session_id"] == "lmnr-session" and trace["user_id"] == "lmnr-user"
    assert trace["metadata"] == {"plan": "pro"} and trace["tags"] == ["beta", "eu"]
    assert trace["spans"][0]["input"] == {"q": "weather?"}
    assert trace["spans"][1]["span_type"] == "LLM"
    # An unknown model has no cost: None, not 0.
    assert trace["spans"][1]["cost_usd"] is None and trace["cost_usd"] is None
    assert trace["total_tokens"] == 15


def test_client_cost_wins_over_price_table(server):
    trace_id, root = new_trace_id(), new_span_id()
    priced = span(
        trace_id,
        root,
        attributes={
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.cost": 0.5,
        },
    )
    server.send([priced])
    assert server.get(f"/api/v1/traces/{trace_id}")["cost_usd"] == 0.5


def test_indexed_prompt_attributes_become_messages(server):
    trace_id, root = new_trace_id(), new_span_id()
    llm = span(
        trace_id,
        root,
        attributes={
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "be brief",
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": "hi",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "hello",
        },
    )
    server.send([llm])
    (stored,) = server.get(f"/api/v1/traces/{trace_id}")["spans"]
    assert stored["input"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert stored["output"] == [{"role": "assistant", "content": "hello"}]


def test_every_attribute_type_round_trips(server):
    trace_id, root = new_trace_id(), new_span_id()
    attributes = {
        "s": "text",
        "i": 7,
        "f": 1.5,
        "b": True,
        "list": [1, "two", [3]],
        "map": {"k": {"nested": [True]}},
        "raw": b"\x00\x01",
    }
    assert (
        server.export(
            request([span(trace_id, root, attributes=attributes)]).SerializeToString()
        ).status_code
        == 200
    )
    (stored,) = server.get(f"/api/v1/traces/{trace_id}")["spans"]
    assert stored["attributes"] == {**attributes, "raw": "AAE="}


def test_logs_and_metrics_are_accepted(server):
    for path in ("/v1/logs", "/v1/metrics"):
        response = server.http.post(
            path, content=b"", headers={"Content-Type": "application/x-protobuf"}
        )
        assert response.status_code == 200
