"""A 200 means committed: spans acknowledged before a SIGKILL are all there after it.

A sender exports traces one request at a time and retries what was not acknowledged,
as OTLP exporters do, while the server is killed with SIGKILL at random moments and
restarted on the same data directory. Afterwards every acknowledged trace is stored
whole and once, and every session's totals equal the sum of its stored traces.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import ServerProcess, start_server, stop_server
from tests.otlp import BASE_NS, new_span_id, new_trace_id, request, span

pytestmark = pytest.mark.slow

KILLS = 20  # bench/kill_stress.py runs the same with more
SPANS_PER_TRACE = 10
# What an OTLP exporter retries (RESOURCE_EXHAUSTED: the server sends it with a RetryInfo).
_GRPC_RETRIED = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
)


def _trace_body(rng: random.Random, session_id: str, start_ns: int = BASE_NS) -> tuple[str, bytes]:
    trace_id, root = new_trace_id(rng), new_span_id(rng)
    spans = [
        span(
            trace_id,
            root,
            name="turn",
            start_ns=start_ns,
            attributes={"threadline.session.id": session_id, "threadline.span.input": "x" * 2000},
        )
    ]
    spans += [
        span(
            trace_id,
            new_span_id(rng),
            parent=root,
            start_ns=start_ns,
            attributes={
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 10,
            },
        )
        for _ in range(SPANS_PER_TRACE - 1)
    ]
    return trace_id, request(spans).SerializeToString()


def test_acknowledged_spans_survive_sigkill(tmp_path):
    figures = kill_and_check(tmp_path, KILLS, seed=7)
    assert figures["kills"] == KILLS and figures["acknowledged"] > KILLS


def test_acknowledged_spans_survive_sigkill_while_retention_deletes(tmp_path):
    """The same, with retention deleting expired traces of the same sessions all along:
    deletes killed mid-batch lose nothing acknowledged and leave no session wrong."""
    figures = kill_and_check(tmp_path, KILLS, seed=11, expired_traces=3_000)
    assert figures["kills"] == KILLS and figures["acknowledged"] > KILLS
    assert figures["expired_left"] == 0


def _store_expired(data_dir: Path, key_project: str, count: int) -> str:
    """``count`` traces that ended ten days ago, in the sessions the sender writes to;
    the key of their project."""
    from threadline.server.model import SpanRecord
    from threadline.server.store.sqlite import SQLiteStore

    rng = random.Random(3)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(data_dir / "threadline.db")
    try:
        project = store.create_project(key_project).id
        old = time.time_ns() - 10 * 86_400 * 10**9
        records = []
        for n in range(count):
            trace_id, root = new_trace_id(rng), new_span_id(rng)
            for i in range(SPANS_PER_TRACE):
                records.append(
                    SpanRecord(
                        trace_id=trace_id,
                        span_id=root if i == 0 else new_span_id(rng),
                        parent_span_id=None if i == 0 else root,
                        name="expired",
                        kind="INTERNAL",
                        start_ns=old + n * 1_000_000,
                        end_ns=old + n * 1_000_000 + 1_000,
                        status="ok",
                        input="x" * 2000 if i == 0 else None,
                        input_tokens=100 if i else None,
                        session_id=f"durable-{n % 7}" if i == 0 else None,
                    )
                )
        store.write_spans(project, records)
        return store.create_key(project)
    finally:
        store.close()


def test_acknowledged_spans_survive_sigkill_over_grpc_with_two_workers(tmp_path):
    figures = kill_and_check(tmp_path, KILLS, seed=8, transport="grpc", workers=2)
    assert figures["kills"] == KILLS and figures["acknowledged"] > KILLS


def kill_and_check(
    tmp_path: Path,
    kills: int,
    seed: int,
    expired_traces: int = 0,
    transport: str = "http",
    workers: int = 1,
) -> dict[str, int]:
    """Export under ``kills`` SIGKILLs and check every acknowledged span; the figures.
    With ``expired_traces``, that many traces of the same sessions ended ten days ago
    and the server runs with one day of retention. ``transport``: "http" or "grpc";
    ``workers``: the server's --workers."""
    rng = random.Random(seed)
    current: dict[str, ServerProcess] = {}
    extra: tuple[str, ...] = ("--workers", str(workers))
    if expired_traces:
        key = _store_expired(tmp_path / "data", "durability", expired_traces)
        extra += ("--retention-days", "1")
    current["server"] = start_server(tmp_path / "data", tmp_path / "log-0.txt", *extra)
    if not expired_traces:
        key = current["server"].new_key("durability")
    acknowledged: dict[str, str] = {}  # trace id -> session id
    unexpected: list[str] = []  # answers other than 200, 429 and 503
    stop = threading.Event()

    def send_http(client: httpx.Client, body: bytes) -> int:
        """The HTTP status of one export, 0 when the server could not be reached."""
        try:
            response = client.post(
                current["server"].base_url + "/v1/traces",
                content=body,
                headers={
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "application/x-protobuf",
                },
            )
        except httpx.TransportError:
            return 0
        if response.status_code not in (200, 429, 503):
            unexpected.append(f"{response.status_code} {response.text}")
        return response.status_code

    channels: dict[str, grpc.Channel] = {}

    def send_grpc(body: bytes) -> int:
        """As ``send_http``, over gRPC: UNAVAILABLE and RESOURCE_EXHAUSTED (the server
        sends it with a RetryInfo) are what exporters retry."""
        address = current["server"].grpc_address
        assert address is not None
        if address not in channels:  # a restarted server listens on a new port
            channels[address] = grpc.insecure_channel(address)
        stub = trace_service_pb2_grpc.TraceServiceStub(channels[address])
        try:
            stub.Export(
                ExportTraceServiceRequest.FromString(body),
                metadata=[("authorization", f"Bearer {key}")],
                timeout=5,
            )
        except grpc.RpcError as error:
            code = error.code()
            if code not in _GRPC_RETRIED:
                unexpected.append(f"{code} {error.details()}")
            return 0
        return 200

    def sender() -> None:
        with httpx.Client(timeout=5) as client:
            n = 0
            while not stop.is_set():
                session_id = f"durable-{n % 7}"
                # Spans of now, when retention runs: the tests' epoch is months old.
                start_ns = time.time_ns() if expired_traces else BASE_NS
                trace_id, body = _trace_body(rng, session_id, start_ns)
                n += 1
                while not stop.is_set():  # retry until acknowledged, like an exporter
                    status = send_grpc(body) if transport == "grpc" else send_http(client, body)
                    if status == 200:
                        acknowledged[trace_id] = session_id
                        break
                    time.sleep(0.02)

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        for kill in range(kills):
            time.sleep(rng.uniform(0.1, 0.6))
            current["server"].process.kill()  # SIGKILL: no shutdown, no last checkpoint
            current["server"].process.wait()
            current["server"] = start_server(
                tmp_path / "data", tmp_path / f"log-{kill + 1}.txt", *extra
            )
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
        for channel in channels.values():
            channel.close()

    try:
        assert unexpected == []
        api = httpx.Client(
            base_url=current["server"].base_url, headers={"Authorization": f"Bearer {key}"}
        )
        expired_left = 0
        if expired_traces:
            # Retention was killed mid-way many times; the last server finishes it.
            cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86_400))
            deadline = time.monotonic() + 120
            while True:
                left = api.get("/api/v1/traces", params={"end": cutoff, "limit": 500})
                expired_left = len(left.json()["items"])
                if not expired_left or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        for trace_id in acknowledged:
            trace = api.get(f"/api/v1/traces/{trace_id}").json()
            assert trace["span_count"] == SPANS_PER_TRACE, trace
        # Rollups agree with the spans: sent-but-unacknowledged traces may be there too
        # (committed, answer lost to the kill), so compare with what is stored.
        stored: list[dict] = []
        cursor = None
        while True:
            page = api.get(
                "/api/v1/traces",
                params={"limit": 500, "window": "all", **({"cursor": cursor} if cursor else {})},
            ).json()
            stored += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert {t["trace_id"] for t in stored} >= acknowledged.keys()
        for session_id in set(acknowledged.values()):
            session = api.get(f"/api/v1/sessions/{session_id}").json()
            members = [t for t in stored if t["session_id"] == session_id]
            assert session["trace_count"] == len(members)
            assert session["span_count"] == sum(t["span_count"] for t in members)
            assert session["input_tokens"] == 900 * len(members)
        return {
            "kills": kills,
            "acknowledged": len(acknowledged),
            "stored": len(stored),
            "spans_checked": len(acknowledged) * SPANS_PER_TRACE,
            "expired_left": expired_left,
        }
    finally:
        stop_server(current["server"])
