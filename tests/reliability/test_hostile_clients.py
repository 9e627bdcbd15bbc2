"""Clients that try to exhaust the server: huge, slow or never-finished requests, floods
of connections, calls without a key. Each test runs a real server with small limits
and checks that the attacker is cut off and another project's exports still succeed,
over HTTP and gRPC."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from tests.conftest import ServerProcess, start_server, stop_server
from tests.otlp import new_span_id, new_trace_id, request, span

pytestmark = pytest.mark.slow

_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


def _body() -> bytes:
    return request([span(new_trace_id(), new_span_id())]).SerializeToString()


def _connect(process: ServerProcess) -> socket.socket:
    host, port = process.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _http_export(process: ServerProcess, key: str) -> int:
    response = httpx.post(
        process.base_url + "/v1/traces",
        content=_body(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    return response.status_code


def _grpc_export(process: ServerProcess, key: str) -> grpc.StatusCode:
    assert process.grpc_address is not None
    with grpc.insecure_channel(process.grpc_address) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        try:
            stub.Export(
                request([span(new_trace_id(), new_span_id())]), metadata=_bearer(key), timeout=10
            )
        except grpc.RpcError as failure:
            return failure.code()
    return grpc.StatusCode.OK


def _read_response(sock: socket.socket) -> bytes:
    """What the server sent until it closed the connection (or 10 s passed)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return data
        if not chunk:
            return data
        data += chunk


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("guarded")
    process = start_server(
        root / "data",
        root / "log.txt",
        "--max-pending-exports",
        "2",
        "--max-receiving-exports",
        "4",
        "--body-timeout",
        "2",
        "--header-timeout",
        "1",
    )
    yield process
    stop_server(process)


@pytest.mark.parametrize(
    "path", ["/login", "/logout", "/v1/traces", "/api/v1/traces", "/api/v1/scores"]
)
def test_a_declared_body_past_its_limit_is_refused_before_it_is_read(
    guarded: ServerProcess, path: str
) -> None:
    with _connect(guarded) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
            f"\r\nContent-Length: {1 << 30}\r\n\r\n".encode()
        )
        sock.sendall(b"key=" + b"a" * 1000)
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"exceeds the limit" in answer


def test_a_streamed_body_past_its_limit_is_cut_off_while_it_arrives(guarded: ServerProcess) -> None:
    """A chunked body (no Content-Length) is refused once it passes the limit: the
    server stops reading and answers, long before the client has sent it all."""
    with _connect(guarded) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
            b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"a" * 65536
        sent = 0
        try:
            for _ in range(1024):  # up to 64 MiB
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _read_response(sock)
    assert sent < 16 << 20, sent  # the server closed the connection early on
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_slow_bodies_hold_no_place_of_work_and_time_out(guarded: ServerProcess) -> None:
    """Eight bodies trickling in with one project's ingest-only key leave another
    project's HTTP and gRPC exports unaffected, and are refused after body_timeout."""
    attacker = guarded.new_key("attacker", "ingest")
    victim = guarded.new_key("victim")
    slow = []
    for _ in range(8):
        sock = _connect(guarded)
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Authorization: Bearer " + attacker.encode() + b"\r\nContent-Length: 1000\r\n\r\n"
            b"\x0a\x04abcd"
        )
        slow.append(sock)
    try:
        time.sleep(0.3)
        started = time.monotonic()
        http_codes = [_http_export(guarded, victim) for _ in range(10)]
        grpc_codes = [_grpc_export(guarded, victim) for _ in range(10)]
        assert http_codes == [200] * 10
        assert grpc_codes == [grpc.StatusCode.OK] * 10
        answers = [_read_response(sock) for sock in slow]
        elapsed = time.monotonic() - started
    finally:
        for sock in slow:
            sock.close()
    statuses = sorted(a.split(b" ", 2)[1].decode() for a in answers if a)
    # Three (the attacker's share of four receiving places) time out; the rest were
    # refused at once with 503.
    assert statuses == ["408"] * 3 + ["503"] * 5, statuses
    assert elapsed < 8
    assert all(b"body_timeout" in a for a in answers if b" 408 " in a)


def test_slow_or_missing_headers_are_cut_off(guarded: ServerProcess) -> None:
    silent = _connect(guarded)
    partial = _connect(guarded)
    partial.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-")
    started = time.monotonic()
    try:
        assert _read_response(silent) == b""
        assert _read_response(partial) == b""
    finally:
        silent.close()
        partial.close()
    assert time.monotonic() - started < 4  # header_timeout is 1 s


def test_headers_past_their_bound_are_refused_and_cut_off(guarded: ServerProcess) -> None:
    """Header lines of 1 MiB, as fast as loopback takes them, within header_timeout: the
    server kept them all (512 MiB of them took it from 152 to 629 MB). Now a 431 once
    they pass 64 KiB, the connection closed, and the rest never read."""
    from threadline.server.http.protocol import MAX_HEADER_BYTES

    rss_before = rss_sending = _rss_mb(guarded.process.pid)
    sock = _connect(guarded)
    sent = 0
    line = b"X-Pad: " + b"a" * (1 << 20) + b"\r\n"
    with ThreadPoolExecutor(1) as reader:
        answer = reader.submit(_read_response, sock)  # read as it is sent, not after
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            # Sent until the server closes the connection (a second after its answer),
            # bounded by time, not bytes: a quiet machine's loopback takes hundreds of
            # MiB in that second, a loaded one far fewer.
            give_up = time.monotonic() + 15
            with pytest.raises(OSError):  # the server closes the connection in the end
                while time.monotonic() < give_up:
                    sock.sendall(line)
                    sent += len(line)
                    rss_sending = _rss_mb(guarded.process.pid)
        finally:
            sock.close()
    assert answer.result().startswith(b"HTTP/1.1 431 "), answer.result()[:200]
    assert str(MAX_HEADER_BYTES).encode() in answer.result()
    # What was sent after the bound was dropped, not kept.
    assert rss_sending - rss_before < 64, (rss_before, rss_sending, sent)
    # A long URL is a header line too, and the 431 is read whole, not reset.
    sock = _connect(guarded)
    try:
        with contextlib.suppress(OSError):
            sock.sendall(b"GET /healthz?x=" + b"a" * (4 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 431 ")
    finally:
        sock.close()
    # Headers under the bound, and a body sent with them in one write, are served.
    cookie = {"Cookie": "; ".join(f"c{i}={'v' * 4000}" for i in range(8))}  # 32 KiB
    assert httpx.get(guarded.base_url + "/healthz", headers=cookie, timeout=10).status_code == 200
    key = guarded.new_key("headers-bound")
    big = request(
        [span(new_trace_id(), new_span_id(), attributes={"threadline.span.input": "x" * 1_000_000})]
    ).SerializeToString()
    exported = httpx.post(
        guarded.base_url + "/v1/traces",
        content=big,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert exported.status_code == 200, exported.text


def test_a_connection_flood_leaves_the_store_its_files(tmp_path: Path) -> None:
    """600 unfinished connections against a server allowed 400 open files: the
    connections are capped (the oldest unfinished ones closed), and exports over new
    connections still succeed, since the store keeps the descriptors it needs."""
    process = start_server(tmp_path / "data", tmp_path / "log.txt", open_files=400)
    key = process.new_key("victim")
    flood: list[socket.socket] = []
    try:
        for _ in range(600):
            sock = _connect(process)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost:")
            flood.append(sock)
        codes = [_http_export(process, key) for _ in range(20)]
        assert codes == [200] * 20
        page = httpx.get(
            process.base_url + "/api/v1/traces",
            params={"window": "all"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert page.status_code == 200
        assert len(page.json()["items"]) == 20
        assert _grpc_export(process, key) == grpc.StatusCode.OK
    finally:
        for sock in flood:
            sock.close()
        stop_server(process)
    assert "unable to open database file" not in process.log()


def _never(release: threading.Event) -> Iterator[bytes]:
    release.wait(30)
    return
    yield b""


def test_grpc_checks_the_key_before_receiving_the_message(guarded: ServerProcess) -> None:
    """A call without a valid key is refused from its metadata alone: the server does
    not wait for (or read) its message."""
    release = threading.Event()
    assert guarded.grpc_address is not None
    with grpc.insecure_channel(guarded.grpc_address) as channel:
        export = channel.stream_unary(_EXPORT)
        started = time.monotonic()
        try:
            with pytest.raises(grpc.RpcError) as failure:
                export(_never(release), metadata=_bearer("tl_not_a_key"), timeout=5)
        finally:
            release.set()
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert time.monotonic() - started < 2


def test_a_grpc_message_that_never_arrives_times_out(guarded: ServerProcess) -> None:
    key = guarded.new_key("slow-grpc")
    release = threading.Event()
    assert guarded.grpc_address is not None
    with grpc.insecure_channel(guarded.grpc_address) as channel:
        export = channel.stream_unary(_EXPORT)
        try:
            with pytest.raises(grpc.RpcError) as failure:
                export(_never(release), metadata=_bearer(key), timeout=8)
        finally:
            release.set()
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "body_timeout" in (failure.value.details() or "")


def test_grpc_errors_name_no_internal_exception(tmp_path: Path) -> None:
    """An unexpected failure (here the database held locked by another process past
    SQLite's busy timeout) is INTERNAL with a generic message, not UNKNOWN with the
    exception's class and text."""
    from threadline.server.store.sqlite.driver import sqlite3

    process = start_server(tmp_path / "data", tmp_path / "log.txt")
    key = process.new_key("locked")
    blocker = sqlite3.connect(process.data_dir / "threadline.db", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        code = None
        assert process.grpc_address is not None
        with grpc.insecure_channel(process.grpc_address) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            try:
                stub.Export(
                    request([span(new_trace_id(), new_span_id())]),
                    metadata=_bearer(key),
                    timeout=30,
                )
            except grpc.RpcError as failure:
                code, details = failure.code(), failure.details() or ""
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        stop_server(process)
    assert code is not None and code != grpc.StatusCode.UNKNOWN, code
    assert "<class" not in details and "sqlite3" not in details and "Error" not in details


def test_the_servers_own_info_lines_are_logged(tmp_path: Path) -> None:
    process = start_server(tmp_path / "data", tmp_path / "log.txt", "--log-level", "info")
    stop_server(process)
    assert "threadline.server.grpc: OTLP/gRPC receiver listening" in process.log()


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def test_unauthenticated_grpc_messages_take_no_memory(guarded: ServerProcess) -> None:
    """48 calls of 15 MiB (24 at a time) with an unknown key: refused from their
    metadata, and gRPC reads ahead only a little of each, so the server's memory
    barely moves (it grew by gigabytes when the messages were buffered whole)."""
    assert guarded.grpc_address is not None
    big = request([]).__class__()
    big.resource_spans.add().resource.attributes.add(key="x").value.string_value = "x" * (15 << 20)
    message = big.SerializeToString()
    pid = guarded.process.pid
    before = _rss_mb(pid)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mb(pid))
            time.sleep(0.02)

    def call() -> grpc.StatusCode:
        options = [("grpc.max_send_message_length", 32 << 20)]
        with grpc.insecure_channel(guarded.grpc_address, options=options) as channel:
            try:
                channel.unary_unary(_EXPORT)(message, metadata=_bearer("tl_not_a_key"), timeout=20)
            except grpc.RpcError as failure:
                return failure.code()
        return grpc.StatusCode.OK

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(max_workers=24) as pool:
            codes = list(pool.map(lambda _: call(), range(48)))
    finally:
        done.set()
        sampler.join()
    assert set(codes) == {grpc.StatusCode.UNAUTHENTICATED}, codes
    assert peak - before < 60, (before, peak)


def test_a_grpc_connection_that_never_sends_its_preface_is_cut_off(
    guarded: ServerProcess,
) -> None:
    """Slow headers over gRPC: an HTTP/2 connection whose preface never comes is closed
    after header_timeout (gRPC's own default waits 120 s)."""
    assert guarded.grpc_address is not None
    host, port = guarded.grpc_address.split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n")  # half a preface
        answer = _read_response(sock)
    assert time.monotonic() - started < 5, answer
