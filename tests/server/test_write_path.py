"""The one write path: an answer comes only after the commit, for every exporter at once.

Concurrent exporters, over HTTP and over gRPC, each read back every trace the moment
its export is answered (the old design answered a busy server's exports from a disk
queue and wrote them moments later: these reads found nothing), though the writer
commits the exports that are ready together in one transaction. Invalid spans are
reported exactly however loaded the server is, exports answered under load survive a
SIGKILL, the ingest worker processes do not outlive a killed server, and a worker that
dies costs one retried export, not the server.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import ServerProcess, start_server, stop_server
from tests.otlp import new_span_id, new_trace_id, request, span

pytestmark = pytest.mark.slow

EXPORTERS = 6
EXPORTS_EACH = 6
SPANS_PER_EXPORT = 200


def _export(session: str) -> tuple[str, bytes]:
    trace_id = new_trace_id()
    body = request(
        [
            span(
                trace_id,
                new_span_id(),
                attributes={
                    "threadline.session.id": session,
                    "threadline.span.input": "a user asks and the model answers " * 30,
                },
            )
            for _ in range(SPANS_PER_EXPORT)
        ]
    ).SerializeToString()
    return trace_id, body


def _post(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/v1/traces", content=body)


def _client(server: ServerProcess, key: str, content_type: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"}
    if content_type:
        headers["Content-Type"] = content_type
    return httpx.Client(base_url=server.base_url, timeout=60, headers=headers)


def _read_your_writes(server: ServerProcess, key: str, send: object) -> list[str]:
    """Run ``EXPORTERS`` exporters at once, each sending ``EXPORTS_EACH`` exports one
    after the other with ``send(exporter, body) -> bool`` (acknowledged) and reading
    every acknowledged trace and its session back at once; what was not found."""
    missing: list[str] = []
    lock = threading.Lock()

    def exporter(number: int) -> None:
        try:
            check(number)
        except (AssertionError, httpx.HTTPError, grpc.RpcError) as error:  # fails the test
            with lock:
                missing.append(f"exporter {number}: {error!r}")

    def check(number: int) -> None:
        with _client(server, key) as api:
            for sent in range(1, EXPORTS_EACH + 1):
                trace_id, body = _export(f"ryw-{number}")
                assert send(number, body)  # type: ignore[operator]
                trace = api.get(f"/api/v1/traces/{trace_id}")
                session = api.get(f"/api/v1/sessions/ryw-{number}")
                problems = []
                if trace.status_code != 200 or trace.json()["span_count"] != SPANS_PER_EXPORT:
                    problems.append(f"trace {trace_id}: {trace.status_code}")
                if session.status_code != 200 or session.json()["trace_count"] != sent:
                    problems.append(f"session ryw-{number} after {sent} exports")
                with lock:
                    missing.extend(problems)

    threads = [threading.Thread(target=exporter, args=(n,)) for n in range(EXPORTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return missing


def _assert_grouped(server: ServerProcess) -> None:
    """Every export was committed, and exports ready together shared a transaction
    (group commit): fewer transactions than exports, though each exporter read its
    writes back at once."""
    health = httpx.get(server.base_url + "/healthz", params={"wait": 30}).json()
    assert health["exports_written"] == EXPORTERS * EXPORTS_EACH, health
    assert health["write_transactions"] < health["exports_written"], health


def test_concurrent_http_exporters_read_their_writes(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", tmp_path / "log.txt", "--workers", "2")
    try:
        key = server.new_key("ryw-http")
        clients = [_client(server, key, "application/x-protobuf") for _ in range(EXPORTERS)]

        def send(number: int, body: bytes) -> bool:
            return _post(clients[number], body).status_code == 200

        assert _read_your_writes(server, key, send) == []
        for client in clients:
            client.close()
        _assert_grouped(server)
    finally:
        stop_server(server)


def test_concurrent_grpc_exporters_read_their_writes(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", tmp_path / "log.txt", "--workers", "2")
    try:
        key = server.new_key("ryw-grpc")
        assert server.grpc_address is not None
        channels = [grpc.insecure_channel(server.grpc_address) for _ in range(EXPORTERS)]
        stubs = [trace_service_pb2_grpc.TraceServiceStub(channel) for channel in channels]

        def send(number: int, body: bytes) -> bool:
            stubs[number].Export(
                ExportTraceServiceRequest.FromString(body),
                metadata=[("authorization", f"Bearer {key}")],
                timeout=60,
            )
            return True  # an error status raises

        assert _read_your_writes(server, key, send) == []
        for channel in channels:
            channel.close()
        _assert_grouped(server)
    finally:
        stop_server(server)


def test_invalid_spans_are_reported_exactly_under_load(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", tmp_path / "log.txt")
    try:
        key = server.new_key("busy")
        trace_id = new_trace_id()
        bad = request([span(trace_id, new_span_id()), span(trace_id, "00" * 8)])
        answers: list[httpx.Response] = []

        def load() -> None:
            with _client(server, key, "application/x-protobuf") as client:
                answers.extend(_post(client, _export("busy")[1]) for _ in range(3))

        threads = [threading.Thread(target=load) for _ in range(3)]
        for thread in threads:
            thread.start()
        with _client(server, key, "application/x-protobuf") as client:
            answer = _post(client, bad.SerializeToString())
        for thread in threads:
            thread.join()

        assert answer.status_code == 200
        assert [a.status_code for a in answers] == [200] * 9
        partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
        assert partial.rejected_spans == 1 and "span_id" in partial.error_message
        with _client(server, key) as api:
            assert api.get(f"/api/v1/traces/{trace_id}").json()["span_count"] == 1
            assert api.get("/api/v1/sessions/busy").json()["span_count"] == 9 * SPANS_PER_EXPORT
    finally:
        stop_server(server)


def _workers(pid: int) -> list[int]:
    """The ingest worker processes of the server process ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in (stat.parent / "cmdline").read_bytes():
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_answered_exports_survive_sigkill_and_the_workers_end_with_the_server(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, tmp_path / "log.txt", "--workers", "2")
    key = server.new_key("kill")
    exports = [_export("kill") for _ in range(8)]
    try:
        answers: list[httpx.Response] = []

        def send(own: list[bytes]) -> None:
            with _client(server, key, "application/x-protobuf") as client:
                answers.extend(_post(client, body) for body in own)

        threads = [
            threading.Thread(target=send, args=([body for _, body in exports[i::4]],))
            for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [a.status_code for a in answers] == [200] * len(exports)
        workers = _workers(server.process.pid)
        assert len(workers) >= 2
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "worker processes outlived their server"
            time.sleep(0.1)
    finally:
        stop_server(server)

    server = start_server(data_dir, tmp_path / "log2.txt")
    try:
        with _client(server, key) as api:
            for trace_id, _ in exports:
                assert (
                    api.get(f"/api/v1/traces/{trace_id}").json()["span_count"] == SPANS_PER_EXPORT
                )
            assert api.get("/api/v1/sessions/kill").json()["trace_count"] == len(exports)
        assert sorted(p.name for p in data_dir.iterdir() if p.is_dir()) == []
    finally:
        stop_server(server)


def test_a_worker_that_dies_costs_a_retry_not_the_server(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", tmp_path / "log.txt", "--workers", "1")
    try:
        key = server.new_key("worker-death")
        deadline = time.monotonic() + 30
        while not (workers := _workers(server.process.pid)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        with _client(server, key, "application/x-protobuf") as client:
            codes = []
            trace_id, body = _export("after")
            while (code := _post(client, body).status_code) != 200:
                codes.append(code)
                assert len(codes) < 50 and code == 503, codes
                time.sleep(0.1)
        with _client(server, key) as api:
            assert api.get(f"/api/v1/traces/{trace_id}").json()["span_count"] == SPANS_PER_EXPORT
    finally:
        stop_server(server)
