"""A full disk: exporters are told to retry, nothing acknowledged is lost, and ingest
resumes by itself once there is space again.

The data directory is a small tmpfs the test mounts (it needs root, or the right to
mount; skipped otherwise), filled to the last byte by a file the test writes and later
deletes. The real server runs on it, fed over OTLP/HTTP and OTLP/gRPC.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest

from tests.conftest import ServerProcess, start_server, stop_server
from tests.otlp import new_span_id, new_trace_id, request, span

pytestmark = pytest.mark.slow  # servers of its own on a file system it mounts

SPANS_PER_EXPORT = 40
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(disk: Path) -> Path:
    """Write a file until the file system has no byte left; returns it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError:
                continue
    return filler


def _export() -> tuple[str, bytes]:
    """One trace of ``SPANS_PER_EXPORT`` spans, ~4 KB of incompressible input each."""
    trace_id = new_trace_id()
    spans = [
        span(
            trace_id,
            new_span_id(),
            attributes={"threadline.span.input": secrets.token_hex(2048)},
        )
        for _ in range(SPANS_PER_EXPORT)
    ]
    return trace_id, request(spans).SerializeToString()


def _post(server: ServerProcess, key: str, body: bytes) -> httpx.Response:
    return httpx.post(
        server.base_url + "/v1/traces",
        content=body,
        timeout=30,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"},
    )


def _grpc_export(server: ServerProcess, key: str, body: bytes) -> grpc.StatusCode:
    assert server.grpc_address is not None
    with grpc.insecure_channel(server.grpc_address) as channel:
        call = channel.unary_unary(TRACE_EXPORT)
        try:
            call(body, metadata=[("authorization", f"Bearer {key}")], timeout=30)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def test_full_disk_answers_retry_later_and_ingest_resumes_when_space_is_freed(
    small_disk: Path, tmp_path: Path
) -> None:
    data = small_disk / "data"
    server = start_server(data, tmp_path / "log1.txt")
    key = server.new_key("disk")
    acknowledged: list[str] = []
    refused: list[tuple[str, bytes]] = []
    try:
        for _ in range(5):
            trace_id, body = _export()
            assert _post(server, key, body).status_code == 200
            acknowledged.append(trace_id)

        filler = _fill(small_disk)
        # Space the WAL or the database file had already taken may take a few exports
        # more; after that every export must be refused with a code exporters retry.
        # Four at a time, as concurrent exporters send them.
        answers: list[httpx.Response] = []
        for _ in range(15):
            exports = [_export() for _ in range(4)]
            with ThreadPoolExecutor(4) as pool:
                round_answers = list(pool.map(lambda e: _post(server, key, e[1]), exports))
            for (trace_id, body), answer in zip(exports, round_answers, strict=True):
                answers.append(answer)
                if answer.status_code == 200:
                    acknowledged.append(trace_id)
                else:
                    refused.append((trace_id, body))
            if len(refused) >= 8:
                break
        errors = [a for a in answers if a.status_code != 200]
        assert len(errors) >= 8, [a.status_code for a in answers]
        for answer in errors:
            assert answer.status_code == 503, (answer.status_code, answer.text)
            assert int(answer.headers["retry-after"]) >= 1
            assert "disk" in answer.json()["error"], answer.text
        trace_id, body = _export()
        assert _grpc_export(server, key, body) == grpc.StatusCode.UNAVAILABLE
        refused.append((trace_id, body))
        health = httpx.get(server.base_url + "/healthz", timeout=10).json()
        assert health["status"] == "disk_full", health
        assert "disk" in health["problem"], health

        # SIGTERM on a full disk: a clean exit (uvicorn ends by raising the signal
        # again), and the server starts again on it.
        server.process.terminate()
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM), server.log()
        assert "Traceback" not in server.log(), server.log()
        server = start_server(data, tmp_path / "log2.txt")
        trace_id, body = _export()
        answer = _post(server, key, body)
        assert answer.status_code == 503, answer.text
        refused.append((trace_id, body))

        # Space again: the same server takes the refused exports as they are retried.
        filler.unlink()
        deadline = time.monotonic() + 30
        while refused and time.monotonic() < deadline:
            trace_id, body = refused[0]
            if trace_id.startswith("grpc:"):
                status = _grpc_export(server, key, body)
                ok = status == grpc.StatusCode.OK
            else:
                ok = _post(server, key, body).status_code == 200
            if ok:
                acknowledged.append(refused.pop(0)[0])
            else:
                time.sleep(0.5)
        assert not refused, f"{len(refused)} exports still refused 30 s after space was freed"
        assert _grpc_export(server, key, _export()[1]) == grpc.StatusCode.OK
        health = httpx.get(server.base_url + "/healthz?wait=30", timeout=40).json()
        assert health["status"] == "ok" and health["queued_exports"] == 0, health

        api = httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        for trace_id in acknowledged:
            found = api.get(f"/api/v1/traces/{trace_id}")
            assert found.status_code == 200, (trace_id, found.text)
            assert found.json()["span_count"] == SPANS_PER_EXPORT

        # The checkpointer kept going through the errors: once ingest is idle the
        # write-ahead log is folded into the database and emptied.
        wal = data / "threadline.db-wal"
        deadline = time.monotonic() + 10
        while wal.exists() and wal.stat().st_size > 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not wal.exists() or wal.stat().st_size == 0, wal.stat().st_size
        assert "Traceback" not in server.log(), server.log()
    finally:
        if server.process.poll() is None:
            stop_server(server)
        os.sync()
