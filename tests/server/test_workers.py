"""With ``--workers N``, every ingest worker process works, however many exporters.

The server process receives every export and hands its CPU work to whichever worker
process is free (``ingest/workers.py``), so the work is shared whatever connections
the exporters keep. (Before, the workers were server processes sharing a listening
socket, and an exporter's connection stayed with one of them.)
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.otlp import new_span_id, new_trace_id, request, span

pytestmark = pytest.mark.slow

SENDERS = 6
EXPORTS_PER_SENDER = 8
SPANS_PER_EXPORT = 200


def _bodies() -> list[list[bytes]]:
    payload = "a user asks and the model answers at some length " * 40
    return [
        [
            request(
                [
                    span(
                        trace_id,
                        new_span_id(),
                        attributes={
                            "threadline.session.id": f"s{sender}",
                            "threadline.span.input": payload,
                        },
                    )
                    for trace_id in [new_trace_id()]
                    for _ in range(SPANS_PER_EXPORT)
                ]
            ).SerializeToString()
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
        with httpx.Client(
            base_url=base_url,
            timeout=60,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"},
        ) as client:
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


def _worker_cpu_seconds(server: int) -> dict[int, float]:
    """CPU seconds so far of each ingest worker process of ``server``, by pid."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        # The workers are spawned with multiprocessing, whose resource tracker is the
        # server's other child.
        if int(fields[1]) == server and "spawn_main" in (stat.parent / "cmdline").read_text():
            found[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / 100
    return found


def test_both_workers_write_however_the_connections_fall(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "log.txt", "--workers", "2")
    try:
        key = server.new_key("workers")
        bodies = _bodies()
        before = _worker_cpu_seconds(server.process.pid)
        answers = _send(server.base_url, key, bodies)
        assert [a.status_code for a in answers] == [200] * SENDERS * EXPORTS_PER_SENDER
        health = httpx.get(server.base_url + "/healthz", params={"wait": 60}).json()
        assert health["queued_exports"] == 0
        after = _worker_cpu_seconds(server.process.pid)

        # Each worker did at least a quarter of the work. With server processes as
        # workers, one run in three or four put the exporters' connections all with one
        # of them, and the other did next to nothing.
        busy = {pid: after[pid] - before[pid] for pid in before}
        assert len(busy) == 2 and min(busy.values()) > sum(busy.values()) / 4, busy
        api = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"})
        for sender in range(SENDERS):
            session = api.get(f"/api/v1/sessions/s{sender}").json()
            assert session["span_count"] == EXPORTS_PER_SENDER * SPANS_PER_EXPORT
    finally:
        stop_server(server)
