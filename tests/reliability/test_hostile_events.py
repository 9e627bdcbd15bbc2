"""OTLP log events (``/v1/logs``, gRPC ``LogsService``) and attribute values built to
cost the server memory or CPU: events for a span that never comes, arrays and maps of
millions of items, compression bombs (gzip and, over gRPC, deflate), wrong media types
and malformed bodies. Each through the real server, over HTTP and gRPC."""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.conftest import ProjectClient, ServerProcess, start_server, stop_server
from tests.otlp import new_span_id, new_trace_id, request, span

pytestmark = pytest.mark.slow

_LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
_TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _events(trace_id: str, span_id: str, count: int, text: str) -> ExportLogsServiceRequest:
    export = ExportLogsServiceRequest()
    records = export.resource_logs.add().scope_logs.add().log_records
    for n in range(count):
        record = records.add(
            event_name="gen_ai.user.message",
            trace_id=bytes.fromhex(trace_id),
            span_id=bytes.fromhex(span_id),
            time_unix_nano=n + 1,
        )
        record.body.kvlist_value.values.add(key="content").value.string_value = text
    return export


def _empty_items(count: int, kind: str = "array") -> AnyValue:
    """An AnyValue holding an array (or map) of ``count`` empty items, built on the
    wire: a protobuf object per item would take the test seconds."""
    if kind == "array":
        items = b"\x0a\x00" * count  # ArrayValue.values = 1: an empty AnyValue
        return AnyValue.FromString(b"\x2a" + _varint(len(items)) + items)  # array_value = 5
    items = b"\x0a\x05\x0a\x01k\x12\x00" * count  # KeyValueList.values: {key "k", empty}
    return AnyValue.FromString(b"\x32" + _varint(len(items)) + items)  # kvlist_value = 6


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _grpc_call(
    process: ServerProcess, key: str, method: str, message: bytes, **options: object
) -> tuple[grpc.StatusCode, bytes | str]:
    assert process.grpc_address is not None
    with grpc.insecure_channel(process.grpc_address) as channel:
        call = channel.unary_unary(method)
        try:
            answer = call(
                message, metadata=(("authorization", f"Bearer {key}"),), timeout=60, **options
            )
        except grpc.RpcError as error:
            return error.code(), error.details() or ""
    return grpc.StatusCode.OK, answer


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # One worker: the server process is the one whose memory the waiting index takes.
    root = tmp_path_factory.mktemp("events")
    process = start_server(root / "data", root / "log.txt", "--workers", "1")
    yield process
    stop_server(process)


def test_events_for_a_span_that_never_comes_take_bounded_memory(
    one_worker: ServerProcess,
) -> None:
    # 30 exports of 10 MB of messages for one span that never comes, over HTTP and
    # gRPC: the index once kept every one of them (300 MB, for genai_event_wait_seconds,
    # and copied to every export of the project's spans) and /healthz said one span.
    key = one_worker.new_key("events-flood")
    trace_id, span_id = new_trace_id(), new_span_id()
    body = _events(trace_id, span_id, 1_000, "x" * 10_000).SerializeToString()
    api = httpx.Client(
        base_url=one_worker.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    before = _rss_mb(one_worker.process.pid)
    for n in range(30):
        if n % 3:
            response = api.post("/v1/logs", content=body, headers=_PROTOBUF)
            assert response.status_code == 200, response.text
        else:
            code, details = _grpc_call(one_worker, key, _LOGS, body)
            assert code == grpc.StatusCode.OK, details
    grown = _rss_mb(one_worker.process.pid) - before
    assert grown < 150, f"the server grew {grown:.0f} MB for 300 MB of waiting events"
    health = httpx.get(one_worker.base_url + "/healthz").json()
    assert health["genai_events_waiting_bytes"] <= 16 * 1024 * 1024, health
    # Events within the bound still reach their span.
    small_trace, small_span = new_trace_id(), new_span_id()
    small = _events(small_trace, small_span, 2, "the ask").SerializeToString()
    assert api.post("/v1/logs", content=small, headers=_PROTOBUF).status_code == 200
    export = request([span(small_trace, small_span, name="chat")]).SerializeToString()
    assert api.post("/v1/traces", content=export, headers=_PROTOBUF).status_code == 200
    (stored,) = api.get(f"/api/v1/traces/{small_trace}").json()["spans"]
    assert "the ask" in str(stored["input"])


@pytest.mark.parametrize("kind", ["array", "map"])
def test_a_value_of_too_many_items_is_refused_not_read(server: ProjectClient, kind: str) -> None:
    # An attribute (or a log body) of a million empty items is 2-7 MB on the wire; read,
    # it took seconds of CPU and hundreds of MB in a worker (7 million: minutes).
    process = server.process
    huge = _empty_items(1_000_000, kind)
    trace_id, bad, good = new_trace_id(), new_span_id(), new_span_id()
    export = request([span(trace_id, bad, name="huge"), span(trace_id, good, name="kept")])
    export.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="big").value.CopyFrom(huge)
    fine = _empty_items(100_000, kind)  # at the bound: kept
    export.resource_spans[0].scope_spans[0].spans[1].attributes.add(key="ok").value.CopyFrom(fine)
    body = export.SerializeToString()
    for protocol in ("http", "grpc"):
        started = time.monotonic()
        if protocol == "http":
            response = server.export(body)
            assert response.status_code == 200, response.text
            answer = ExportTraceServiceResponse.FromString(response.content)
        else:
            code, raw = _grpc_call(process, server.api_key, _TRACES, body)
            assert code == grpc.StatusCode.OK, raw
            assert isinstance(raw, bytes)
            answer = ExportTraceServiceResponse.FromString(raw)
        assert answer.partial_success.rejected_spans == 1, (protocol, answer)
        assert "'huge'" in answer.partial_success.error_message
        assert "100000" in answer.partial_success.error_message
        assert time.monotonic() - started < 120
    names = [s["name"] for s in server.get(f"/api/v1/traces/{trace_id}")["spans"]]
    assert names == ["kept"]
    # A log record's body alike: the whole export is refused.
    logs = _events(new_trace_id(), new_span_id(), 1, "hi")
    logs.resource_logs[0].scope_logs[0].log_records[0].body.CopyFrom(huge)
    response = server.http.post("/v1/logs", content=logs.SerializeToString(), headers=_PROTOBUF)
    assert response.status_code == 413, response.text
    assert "100000" in response.json()["error"]
    code, details = _grpc_call(process, server.api_key, _LOGS, logs.SerializeToString())
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "100000" in str(details)


def test_compression_bombs_on_logs_are_refused_over_http_and_grpc(
    server: ProjectClient,
) -> None:
    # 40 MiB of zeros inflated: past max_decoded_bytes (32 MiB), over both protocols and
    # both of gRPC's encodings (its deflate had never been tried).
    zeros = b"\x7a" + _varint(40 << 20) + bytes(40 << 20)  # an unknown field of 40 MiB
    logs = server.http.post(
        "/v1/logs",
        content=gzip.compress(zeros),
        headers={**_PROTOBUF, "Content-Encoding": "gzip"},
    )
    assert logs.status_code == 413, logs.text
    deflated = server.http.post(
        "/v1/logs",
        content=zlib.compress(zeros),
        headers={**_PROTOBUF, "Content-Encoding": "deflate"},
    )
    assert deflated.status_code == 415, deflated.text
    for method in (_LOGS, _TRACES):
        for compression in (grpc.Compression.Deflate, grpc.Compression.Gzip):
            code, details = _grpc_call(
                server.process, server.api_key, method, zeros, compression=compression
            )
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (method, compression, details)
    # A small export compressed with deflate is taken, as with gzip.
    trace_id, span_id = new_trace_id(), new_span_id()
    small = _events(trace_id, span_id, 1, "deflated ask").SerializeToString()
    code, details = _grpc_call(
        server.process, server.api_key, _LOGS, small, compression=grpc.Compression.Deflate
    )
    assert code == grpc.StatusCode.OK, details
    spans = request([span(trace_id, span_id, name="chat")]).SerializeToString()
    code, details = _grpc_call(
        server.process, server.api_key, _TRACES, spans, compression=grpc.Compression.Deflate
    )
    assert code == grpc.StatusCode.OK, details
    (stored,) = server.get(f"/api/v1/traces/{trace_id}")["spans"]
    assert "deflated ask" in str(stored["input"])


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{}", None, 415),
        (b"{}", "text/plain", 415),
        (b"\xff\xff\xff\xff", "application/x-protobuf", 400),
        (b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf", 400),  # length past end
        (b'{"resourceLogs": [' * 100_000, "application/json", 400),
        (b'{"resourceLogs": {"a": 1}}', "application/json", 400),
        (b"[]", "application/json", 400),
    ],
)
def test_bad_log_bodies_are_4xx(
    server: ProjectClient, body: bytes, content_type: str | None, status: int
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = server.http.post("/v1/logs", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]


def test_log_bodies_nested_past_the_decoder_are_refused(server: ProjectClient) -> None:
    # Arrays in arrays 10,000 deep, as protobuf (upb's depth limit) and as OTLP/JSON.
    nested = b""
    for _ in range(10_000):
        inner = b"\x0a" + _varint(len(nested)) + nested
        nested = b"\x2a" + _varint(len(inner)) + inner
    logs = _events(new_trace_id(), new_span_id(), 1, "hi")
    record = logs.resource_logs[0].scope_logs[0].log_records[0]
    record.ClearField("body")
    # The body appended as a field of the record: the request rebuilt on the wire.
    record_bytes = record.SerializeToString() + b"\x2a" + _varint(len(nested)) + nested
    scope = b"\x12" + _varint(len(record_bytes)) + record_bytes
    resource = b"\x12" + _varint(len(scope)) + scope
    wire = b"\x0a" + _varint(len(resource)) + resource
    response = server.http.post("/v1/logs", content=wire, headers=_PROTOBUF)
    assert response.status_code == 400, response.text
    code, _ = _grpc_call(server.process, server.api_key, _LOGS, wire)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    deep = '{"arrayValue": {"values": [' * 10_000 + "{}" + "]}}" * 10_000
    document = (
        '{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"eventName":'
        f' "gen_ai.user.message", "traceId": "{new_trace_id()}", "spanId":'
        f' "{new_span_id()}", "body": {deep}}}]}}]}}]}}'
    )
    response = server.http.post(
        "/v1/logs", content=document, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text


def test_the_waiting_index_is_read_back_bounded_after_a_restart(tmp_path: Path) -> None:
    # The store keeps what the index dropped until the wait is over; a restart reads it
    # back through the same bounds.
    process = start_server(tmp_path / "data", tmp_path / "log.txt", "--workers", "1")
    try:
        key = process.new_key("restart")
        body = _events(new_trace_id(), new_span_id(), 1_000, "y" * 10_000).SerializeToString()
        api = httpx.Client(
            base_url=process.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        for _ in range(3):
            assert api.post("/v1/logs", content=body, headers=_PROTOBUF).status_code == 200
    finally:
        stop_server(process)
    process = start_server(tmp_path / "data", tmp_path / "log2.txt", "--workers", "1")
    try:
        health = httpx.get(process.base_url + "/healthz").json()
        assert health["genai_events_waiting_bytes"] <= 16 * 1024 * 1024, health
    finally:
        stop_server(process)
