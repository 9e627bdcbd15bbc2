"""Back-pressure on OTLP/gRPC: work in hand past its bound is RESOURCE_EXHAUSTED with a
google.rpc.RetryInfo (the OTLP specification's retryable form of that code), and
OpenTelemetry's own gRPC exporter retries it after the delay given and is stored."""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from tests.conftest import ServerProcess, start_server, stop_server
from tests.otlp import new_span_id, new_trace_id, request, span


@pytest.fixture
def one_receiving_place(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_server(tmp_path / "data", tmp_path / "log.txt", "--max-receiving-exports", "1")
    try:
        yield server
    finally:
        stop_server(server)


@contextmanager
def _slow_http_export(server: ServerProcess, key: str) -> Iterator[tuple[str, grpc.RpcError]]:
    """An HTTP export whose body arrives only when the block ends: until then it holds
    the server's one receiving place. Yields its trace id (stored once it is sent) and a
    raw gRPC export's refusal while it holds the place."""
    trace_id = new_trace_id()
    body = request([span(trace_id, new_span_id())]).SerializeToString()
    address = urlsplit(server.base_url)
    head = (
        "POST /v1/traces HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        f"Authorization: Bearer {key}\r\n"
        "Content-Type: application/x-protobuf\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    deadline = time.monotonic() + 30
    while True:
        connection = socket.create_connection((address.hostname, address.port), timeout=30)
        try:
            connection.sendall(head + body[:1])
            # A probe can reach the server before the slow export's headers do: the probe
            # then holds the place and the slow export is answered 503. Send it again.
            refused = _refused_unless_answered(server, key, connection, deadline)
            if refused is None:
                continue
            yield trace_id, refused
            connection.sendall(body[1:])
            assert connection.recv(64).startswith(b"HTTP/1.1 200")
            return
        finally:
            connection.close()


def _refused_unless_answered(
    server: ServerProcess, key: str, slow: socket.socket, deadline: float
) -> grpc.RpcError | None:
    """A raw export's refusal once the slow export holds the place (it may take the
    server a moment to read its headers), or None if the slow export was answered
    (refused) instead."""
    while True:
        refused = _raw_export(server, key)
        if refused is not None:
            return refused
        assert time.monotonic() < deadline, "the slow export never held the receiving place"
        if select.select([slow], [], [], 0.05)[0]:
            assert slow.recv(64).startswith(b"HTTP/1.1 503")
            return None


def _raw_export(server: ServerProcess, key: str) -> grpc.RpcError | None:
    assert server.grpc_address is not None
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        try:
            stub.Export(
                request([span(new_trace_id(), new_span_id())]),
                metadata=[("authorization", f"Bearer {key}")],
                timeout=10,
            )
        except grpc.RpcError as refused:
            return refused
    return None


def test_overload_is_resource_exhausted_with_retry_info(one_receiving_place: ServerProcess):
    server = one_receiving_place
    key = server.new_key("grpc-busy")
    with _slow_http_export(server, key) as (_, refused):
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        assert "max_receiving_exports" in refused.details()  # type: ignore[attr-defined]
        trailers = dict(refused.trailing_metadata())  # type: ignore[attr-defined]
    # The standard status details, as the Go and Java exporters and the Collector read them.
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    (detail,) = status.details
    retry = error_details_pb2.RetryInfo()
    assert detail.Unpack(retry)
    assert retry.retry_delay.seconds == 1  # HTTP's Retry-After
    # And the RetryInfo alone, as the Python exporter reads it.
    alone = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert alone == retry
    # Once the place is free again, exports are taken.
    assert _raw_export(server, key) is None


def test_opentelemetry_grpc_exporter_retries_after_the_delay_given(
    one_receiving_place: ServerProcess, caplog: pytest.LogCaptureFixture
):
    server = one_receiving_place
    key = server.new_key("grpc-retry")
    exporter = OTLPSpanExporter(
        endpoint=f"http://{server.grpc_address}",
        insecure=True,
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    results: list[SpanExportResult] = []

    class Recording(SimpleSpanProcessor):
        def on_end(self, span) -> None:  # type: ignore[no-untyped-def]
            results.append(exporter.export([span]))

    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-retry"}))
    provider.add_span_processor(Recording(exporter))
    caplog.set_level(logging.WARNING, logger="opentelemetry.exporter.otlp.proto.grpc")
    with _slow_http_export(server, key) as (held_trace, _):
        # Refused at once, the exporter waits; the place frees 0.3 s later, before its retry.
        exporting = threading.Thread(
            target=lambda: provider.get_tracer("t").start_span("turn").end()
        )
        exporting.start()
        time.sleep(0.3)
    exporting.join(timeout=30)
    assert results == [SpanExportResult.SUCCESS]
    transient = [r.getMessage() for r in caplog.records if "Transient error" in r.getMessage()]
    assert len(transient) == 1, transient
    # Retried as the spec allows RESOURCE_EXHAUSTED, after the delay the server gave.
    assert "StatusCode.RESOURCE_EXHAUSTED" in transient[0]
    assert "retrying in 1.00s" in transient[0]
    api = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"})
    assert api.get(f"/api/v1/traces/{held_trace}").status_code == 200
    # The exporter's span is stored once (probes taken before the place was held may be
    # stored too: they are named "span").
    exported = api.get("/api/v1/traces", params={"limit": 10, "window": "all"}).json()
    assert [item["name"] for item in exported["items"]].count("turn") == 1
    exporter.shutdown()
    provider.shutdown()
