"""OTLP/gRPC ingest: OpenTelemetry's own gRPC exporter and raw gRPC calls against the
real server, checked through the JSON API."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import threading

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from tests.conftest import ProjectClient, free_port, start_server, stop_server
from tests.otlp import large_traces, new_span_id, new_trace_id, request, span
from threadline.server.ingest.decode import PROTOBUF

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


@pytest.fixture
def channel(server: ProjectClient):
    assert server.process.grpc_address is not None
    with grpc.insecure_channel(server.process.grpc_address) as channel:
        yield channel


def test_opentelemetry_grpc_exporter_spans_are_readable_once_acknowledged(
    server: ProjectClient,
) -> None:
    exporter = OTLPSpanExporter(
        endpoint=f"http://{server.process.grpc_address}",
        insecure=True,
        headers={"authorization": f"Bearer {server.api_key}"},
        compression=grpc.Compression.Gzip,
    )
    results: list[SpanExportResult] = []

    class Recording(SimpleSpanProcessor):
        # SimpleSpanProcessor exports each span as it ends; keep the exporter's verdict.
        def on_end(self, span) -> None:  # type: ignore[no-untyped-def]
            results.append(exporter.export([span]))

    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-test"}))
    provider.add_span_processor(Recording(exporter))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span(
            "turn",
            attributes={
                "threadline.session.id": "grpc-session",
                "threadline.user.id": "grpc-user",
                "threadline.span.input": "question",
            },
        ) as root,
        tracer.start_as_current_span(
            "llm",
            attributes={
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 7,
                "gen_ai.usage.output_tokens": 2,
            },
        ),
    ):
        pass
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert results == [SpanExportResult.SUCCESS, SpanExportResult.SUCCESS]
    provider.shutdown()

    # Acknowledged means committed: readable at once, with nothing to wait for.
    trace = server.get(f"/api/v1/traces/{trace_id}")
    assert trace["span_count"] == 2
    assert trace["session_id"] == "grpc-session"
    llm = next(s for s in trace["spans"] if s["name"] == "llm")
    assert (llm["model"], llm["input_tokens"], llm["output_tokens"]) == ("gpt-4o-mini", 7, 2)
    session = server.get("/api/v1/sessions/grpc-session")
    assert session["user_ids"] == ["grpc-user"] and session["trace_count"] == 1


def test_gzip_and_partial_success(server: ProjectClient, channel: grpc.Channel) -> None:
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    good = new_trace_id()
    body = request(
        [
            span(good, new_span_id(), name="kept"),
            span(good, "00" * 8, name="zero-span-id"),
        ]
    )
    response = stub.Export(
        body, metadata=_bearer(server.api_key), compression=grpc.Compression.Gzip
    )
    assert response.partial_success.rejected_spans == 1
    assert "zero-span-id" in response.partial_success.error_message
    assert [s["name"] for s in server.get(f"/api/v1/traces/{good}")["spans"]] == ["kept"]


def test_missing_unknown_and_revoked_keys_are_unauthenticated(
    server: ProjectClient, channel: grpc.Channel
) -> None:
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    trace_id = new_trace_id()
    body = request([span(trace_id, new_span_id())])
    for metadata in ([], _bearer("tl_not-a-key"), [("authorization", server.api_key)]):
        with pytest.raises(grpc.RpcError) as failure:
            stub.Export(body, metadata=metadata)
        assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
        assert "key" in failure.value.details()
    assert server.http.get(f"/api/v1/traces/{trace_id}").status_code == 404


def test_an_ingest_only_key_may_send(server: ProjectClient, channel: grpc.Channel) -> None:
    ingest_key = server.new_key("ingest")
    trace_id = new_trace_id()
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    stub.Export(request([span(trace_id, new_span_id())]), metadata=_bearer(ingest_key))
    assert server.get(f"/api/v1/traces/{trace_id}")["span_count"] == 1


def test_a_body_that_is_not_an_export_request_is_invalid_argument(
    server: ProjectClient, channel: grpc.Channel
) -> None:
    export = channel.unary_unary(TRACE_EXPORT)  # raw bytes in and out
    with pytest.raises(grpc.RpcError) as failure:
        export(b"\xff\xff\xff\xff", metadata=_bearer(server.api_key))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ExportTraceServiceRequest" in failure.value.details()
    assert "Traceback" not in server.process.log()


def test_a_logs_message_that_is_not_otlp_is_invalid_argument(
    server: ProjectClient, channel: grpc.Channel
) -> None:
    export = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
    with pytest.raises(grpc.RpcError) as failure:
        export(b"\xff\xff\xff\xff", metadata=_bearer(server.api_key))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ExportLogsServiceRequest" in failure.value.details()
    assert "Traceback" not in server.process.log()


def test_logs_and_metrics_are_accepted_and_discarded(
    server: ProjectClient, channel: grpc.Channel
) -> None:
    logs = logs_service_pb2_grpc.LogsServiceStub(channel)
    metrics = metrics_service_pb2_grpc.MetricsServiceStub(channel)
    assert (
        logs.Export(
            logs_service_pb2.ExportLogsServiceRequest(), metadata=_bearer(server.api_key)
        ).ByteSize()
        == 0
    )
    assert (
        metrics.Export(
            metrics_service_pb2.ExportMetricsServiceRequest(), metadata=_bearer(server.api_key)
        ).ByteSize()
        == 0
    )
    with pytest.raises(grpc.RpcError) as failure:
        logs.Export(logs_service_pb2.ExportLogsServiceRequest())
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.slow
def test_message_size_limit_and_several_workers_on_one_grpc_port(tmp_path) -> None:
    """gRPC refuses what HTTP refuses, inflated: one limit, ``max_decoded_bytes``."""
    # Two worker processes bind the same gRPC port (SO_REUSEPORT); either answers.
    process = start_server(
        tmp_path / "data",
        tmp_path / "log.txt",
        "--workers",
        "2",
        "--max-body-bytes",
        "20000",
        "--max-decoded-bytes",
        "60000",
    )

    def export_of(size: int) -> ExportTraceServiceRequest:
        attributes = {"threadline.span.input": "x" * size}
        return request([span(new_trace_id(), new_span_id(), attributes=attributes)])

    try:
        key = process.new_key("grpc-limits")
        api = httpx.Client(base_url=process.base_url, headers={"Authorization": f"Bearer {key}"})
        stored = []
        for _ in range(6):  # new connections, so the kernel may pick either worker
            with grpc.insecure_channel(process.grpc_address) as channel:
                stub = trace_service_pb2_grpc.TraceServiceStub(channel)
                trace_id = new_trace_id()
                stub.Export(request([span(trace_id, new_span_id())]), metadata=_bearer(key))
                stored.append(api.get(f"/api/v1/traces/{trace_id}").status_code)
                # Past max_body_bytes inflated, within max_decoded_bytes: taken gzipped
                # by both receivers (gRPC refused it when its limit was max_body_bytes).
                fits = export_of(30_000)
                stub.Export(fits, metadata=_bearer(key), compression=grpc.Compression.Gzip)
                over_http = api.post(
                    "/v1/traces",
                    content=gzip.compress(fits.SerializeToString()),
                    headers={"Content-Type": PROTOBUF, "Content-Encoding": "gzip"},
                )
                assert over_http.status_code == 200, over_http.text
                # Past max_decoded_bytes: refused by both, sent plain or gzipped.
                big = export_of(80_000)
                for compression in (grpc.Compression.NoCompression, grpc.Compression.Gzip):
                    with pytest.raises(grpc.RpcError) as failure:
                        stub.Export(big, metadata=_bearer(key), compression=compression)
                    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                refused = api.post(
                    "/v1/traces",
                    content=gzip.compress(big.SerializeToString()),
                    headers={"Content-Type": PROTOBUF, "Content-Encoding": "gzip"},
                )
                assert refused.status_code == 413
        assert stored == [200] * 6
        assert "Traceback" not in process.log()
    finally:
        stop_server(process)


def test_a_grpc_port_already_taken_fails_the_start(tmp_path) -> None:
    # With one worker the port is bound exclusively: never silently shared.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "threadline.server",
                "serve",
                "--port",
                str(free_port()),
                "--grpc-port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port} for OTLP/gRPC" in done.stderr
    assert "--grpc-port" in done.stderr


@pytest.mark.slow
def test_overload_is_resource_exhausted_and_loses_nothing_acknowledged(tmp_path) -> None:
    """Admission is shared with HTTP: past max_pending_exports a gRPC export gets
    RESOURCE_EXHAUSTED with a RetryInfo (which OTLP exporters retry:
    test_grpc_backpressure.py), and every acknowledged one is stored."""
    process = start_server(tmp_path / "data", tmp_path / "log.txt", "--max-pending-exports", "1")
    try:
        key = process.new_key("grpc-load")
        bodies = large_traces(16, 200, {"threadline.span.input": "x" * 4000})
        outcomes: list[tuple[str, grpc.StatusCode]] = []
        lock = threading.Lock()

        def send(trace_id: str, body) -> None:  # type: ignore[no-untyped-def]
            with grpc.insecure_channel(process.grpc_address) as channel:
                stub = trace_service_pb2_grpc.TraceServiceStub(channel)
                try:
                    stub.Export(body, metadata=_bearer(key), timeout=60)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as failure:
                    code = failure.code()
            with lock:
                outcomes.append((trace_id, code))

        threads = [threading.Thread(target=send, args=item) for item in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        codes = {code for _, code in outcomes}
        assert codes == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
        api = httpx.Client(base_url=process.base_url, headers={"Authorization": f"Bearer {key}"})
        for trace_id, code in outcomes:
            if code == grpc.StatusCode.OK:
                assert api.get(f"/api/v1/traces/{trace_id}").json()["span_count"] == 200
        assert "Traceback" not in process.log()
    finally:
        stop_server(process)
