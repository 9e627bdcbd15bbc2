"""The intake queue: exports answered while the ingest thread is busy are on disk, are
written moments later by some worker, and survive the death of the process.

The server tests run the real server; the queue's own tests run ``Intake`` in real
processes (a SIGKILLed one leaves its claim behind).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.otlp import new_span_id, new_trace_id, request, span
from threadline.server.ingest.intake import Intake
from threadline.server.ingest.normalize import all_valid, normalize_request

SPANS_PER_EXPORT = 300


def _export(session: str) -> tuple[str, bytes]:
    trace_id = new_trace_id()
    body = request(
        [
            span(
                trace_id,
                new_span_id(),
                attributes={
                    "threadline.session.id": session,
                    "threadline.span.input": "words " * 300,
                },
            )
            for _ in range(SPANS_PER_EXPORT)
        ]
    ).SerializeToString()
    return trace_id, body


def _send_concurrently(base_url: str, key: str, bodies: list[bytes]) -> list[httpx.Response]:
    answers: list[httpx.Response] = [None] * len(bodies)  # type: ignore[list-item]

    def send(index: int) -> None:
        answers[index] = httpx.post(
            base_url + "/v1/traces",
            content=bodies[index],
            timeout=60,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"},
        )

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _queued_files(data_dir: Path) -> int:
    intake = data_dir / "intake"
    return sum(1 for f in intake.glob("*.otlp")) + sum(
        1 for f in (intake / "claimed").glob("*.otlp.*")
    )


@pytest.mark.slow
def test_queued_exports_survive_sigkill(tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir, tmp_path / "log.txt")
    key = server.new_key("kill")
    exports = [_export("kill") for _ in range(12)]
    try:
        answers = _send_concurrently(server.base_url, key, [body for _, body in exports])
        assert [a.status_code for a in answers] == [200] * len(exports)
        # Killed at once: twelve exports answered in the time it takes to write a few.
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
    finally:
        stop_server(server)
    assert _queued_files(data_dir) > 0  # the test is about them

    server = start_server(data_dir, tmp_path / "log2.txt")
    try:
        health = httpx.get(server.base_url + "/healthz", params={"wait": 60}).json()
        assert health["queued_exports"] == 0
        api = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"})
        for trace_id, _ in exports:
            assert api.get(f"/api/v1/traces/{trace_id}").json()["span_count"] == SPANS_PER_EXPORT
        assert api.get("/api/v1/sessions/kill").json()["trace_count"] == len(exports)
        assert _queued_files(data_dir) == 0
    finally:
        stop_server(server)


@pytest.mark.slow
def test_invalid_spans_are_reported_while_the_server_is_busy(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "log.txt")
    try:
        key = server.new_key("busy")
        trace_id = new_trace_id()
        bad = request([span(trace_id, new_span_id()), span(trace_id, "00" * 8)])
        bodies = [body for _, body in (_export("busy") for _ in range(6))]
        load = threading.Thread(target=_send_concurrently, args=(server.base_url, key, bodies))
        load.start()
        # Sent once exports are queued, so while the ingest thread is busy.
        deadline = time.monotonic() + 30
        while not httpx.get(server.base_url + "/healthz").json()["queued_exports"]:
            assert time.monotonic() < deadline, "no export was queued"
        answers = _send_concurrently(server.base_url, key, [bad.SerializeToString()])
        load.join()

        assert answers[-1].status_code == 200
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )

        partial = ExportTraceServiceResponse.FromString(answers[-1].content).partial_success
        assert partial.rejected_spans == 1 and "span_id" in partial.error_message
        httpx.get(server.base_url + "/healthz", params={"wait": 60})
        api = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"})
        assert api.get(f"/api/v1/traces/{trace_id}").json()["span_count"] == 1
        assert api.get("/api/v1/sessions/busy").json()["span_count"] == 6 * SPANS_PER_EXPORT
    finally:
        stop_server(server)


def test_a_damaged_queued_file_is_set_aside_and_the_rest_are_written(tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir, tmp_path / "log.txt")
    try:
        key = server.new_key("damaged")
        intake = data_dir / "intake"
        # Older than anything the server queues, so it is claimed first.
        (intake / "00000000000000000001-0_0-0-1.otlp").write_bytes(b"\xff not protobuf")
        trace_id, body = _export("damaged")
        assert _send_concurrently(server.base_url, key, [body])[0].status_code == 200

        assert httpx.get(server.base_url + "/healthz", params={"wait": 60}).json() == {
            "status": "ok",
            "queued_exports": 0,
        }
        assert len(list((intake / "claimed").glob("*.damaged"))) == 1
        api = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"})
        assert api.get(f"/api/v1/traces/{trace_id}").json()["span_count"] == SPANS_PER_EXPORT
        assert "is damaged; set aside" in server.log()
    finally:
        stop_server(server)


# --- the queue itself, in real processes ---------------------------------------------


def _claim_and_die(directory: Path, ready) -> None:  # in a child process
    intake = Intake(directory, limit=10)
    assert intake.claim() is not None
    ready.set()
    signal.pause()  # until SIGKILLed


def test_a_claim_of_a_killed_process_goes_back_in_the_queue(tmp_path):
    intake = Intake(tmp_path, limit=10)
    intake.put(7, b"first")
    intake.put(8, b"second")
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    child = context.Process(target=_claim_and_die, args=(tmp_path, ready))
    child.start()
    try:
        assert ready.wait(60)
        assert intake.depth() == 2  # one queued, one claimed by the child
        assert intake.recover() == 0  # the child lives: its claim stays its own
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert intake.recover() == 1
    finally:
        child.kill()
    claims = [intake.claim(), intake.claim()]
    assert sorted((c.project_id, c.body) for c in claims if c) == [(7, b"first"), (8, b"second")]
    assert intake.claim() is None
    for claim in claims:
        assert claim is not None
        intake.done(claim)
    assert intake.depth() == 0
    intake.close()


def test_a_queued_export_is_claimed_once(tmp_path):
    first, second = Intake(tmp_path, limit=10), Intake(tmp_path, limit=10)
    first.put(1, b"only")
    assert first.has_room()
    claim = second.claim()
    assert claim is not None and claim.body == b"only"
    assert first.claim() is None
    second.release(claim)
    assert first.claim() is not None
    first.close()
    second.close()


def test_all_valid_agrees_with_normalising():
    trace, span_id = new_trace_id(), new_span_id()
    cases = [
        span(trace, span_id),
        span(trace, span_id, parent="00" * 8),
        span(trace, span_id, parent=new_span_id()),
        span("00" * 16, span_id),
        span(trace[:16], span_id),
        span(trace, "00" * 8),
        span(trace, span_id[:8]),
        span(trace, span_id, parent="01" * 4),
        span(trace, span_id, end_ns=2**63),
        span(trace, span_id, start_ns=2**63, end_ns=0),
        span(trace, span_id, end_ns=2**63 - 1),
    ]
    for case in cases:
        export = request([case])
        assert all_valid(export) == (normalize_request(export).rejected == 0), case


def test_a_file_the_queue_did_not_name_is_set_aside(tmp_path):
    intake = Intake(tmp_path, limit=10)
    (tmp_path / "0-stray.otlp").write_bytes(b"")  # sorts first
    intake.put(3, b"real")
    claim = intake.claim()
    assert claim is not None and (claim.project_id, claim.body) == (3, b"real")
    assert [p.name for p in (tmp_path / "claimed").glob("*.damaged")] == [
        f"0-stray.otlp.{claim.path.name.rsplit('.', 1)[1]}.damaged"
    ]
    intake.close()
