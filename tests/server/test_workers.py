"""With ``--workers N``, a few long-lived exporters spread over the worker processes.

Workers share one listening socket and an exporter keeps its connection with the worker
that accepted it, so a busy worker asks exporters to reconnect (``Connection: close``).
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.conftest import start_server, stop_server
from tests.otlp import new_span_id, new_trace_id, request, span

SENDERS = 6
EXPORTS_PER_SENDER = 8
SPANS_PER_EXPORT = 200


def _bodies() -> list[list[bytes]]:
    payload = "a user asks and the model answers at some length " * 40
    return [
        [
            request([
                span(trace_id, new_span_id(), attributes={
                    "threadline.session.id": f"s{sender}", "threadline.span.input": payload})
                for trace_id in [new_trace_id()] for _ in range(SPANS_PER_EXPORT)
            ]).SerializeToString()
            for _ in range(EXPORTS_PER_SENDER)
        ]
        for sender in range(SENDERS)
    ]


def _send(base_url: str, key: str, bodies: list[list[bytes]]) -> list[httpx.Response]:
    """Each sender exports its bodies one after the other on one keep-alive client, as
    an OTLP exporter does."""
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def sender(own: list[bytes]) -> None:
        with httpx.Client(base_url=base_url, timeout=60, headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/x-protobuf"}) as client:
            for body in own:
                response = client.post("/v1/traces", content=body)
                with lock:
                    answers.append(response)

    threads = [threading.Thread(target=sender, args=(own,)) for own in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _worker_cpu_seconds(supervisor: int) -> dict[int, float]:
    """CPU seconds so far of each worker process of ``supervisor``, by pid."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        # uvicorn spawns its workers with multiprocessing, whose resource tracker is
        # the supervisor's other child.
        if int(fields[1]) == supervisor and "spawn_main" in (stat.parent / "cmdline").read_text():
            found[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / 100
    return found


def test_a_busy_worker_sheds_connections_and_both_workers_ingest(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "log.txt", "--workers", "2")
    try:
        key = server.new_key("workers")
        bodies = _bodies()
        before = _worker_cpu_seconds(server.process.pid)
        answers = _send(server.base_url, key, bodies)
        after = _worker_cpu_seconds(server.process.pid)

        assert [a.status_code for a in answers] == [200] * SENDERS * EXPORTS_PER_SENDER
        # Six exporters on two workers: one worker held three connections at the start,
        # so it had two exports waiting when it answered one, and shed a connection.
        assert any(a.headers.get("connection") == "close" for a in answers)
        # Each worker did at least a quarter of the work (a worker without a share of
        # the connections does next to nothing).
        busy = {pid: after[pid] - before[pid] for pid in before}
        assert len(busy) == 2 and min(busy.values()) > sum(busy.values()) / 4, busy
        api = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"})
        for sender in range(SENDERS):
            session = api.get(f"/api/v1/sessions/s{sender}").json()
            assert session["span_count"] == EXPORTS_PER_SENDER * SPANS_PER_EXPORT
    finally:
        stop_server(server)


def test_a_single_worker_keeps_connections(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "log.txt")
    try:
        key = server.new_key("one")
        answers = _send(server.base_url, key, _bodies())

        assert [a.status_code for a in answers] == [200] * SENDERS * EXPORTS_PER_SENDER
        # Reconnecting could only land on the same process.
        assert not any(a.headers.get("connection") == "close" for a in answers)
    finally:
        stop_server(server)
