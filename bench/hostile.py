"""Attack a real server on loopback and measure what it costs: peak RSS, and another
project's ingest success rate meanwhile.

    python bench/hostile.py                      # every attack, 15 s each
    python bench/hostile.py --attack slow-bodies --seconds 30

For each attack a fresh server is started (``--workers 1``, so the server is one
process whose RSS is read from /proc) with an open-file limit of 1,024, the usual
default. A victim project exports 20 spans every 50 ms over OTLP/HTTP and over OTLP/gRPC
for ``--baseline`` seconds (normal load: its peak RSS is the reference), then
the attack runs for ``--seconds`` while the victim goes on. Printed per attack: peak
RSS under normal load, peak RSS under attack and their ratio (goal: at most 2x), and
the victim's success rate during the attack over HTTP and gRPC (goal: at least 99 %).

Attacks (all bounded in time and count, loopback only):

- ``login-body``: three POST /login claiming 1 GiB bodies and streaming them as fast
  as the server reads.
- ``slow-bodies``: 64 sockets with an ingest-only key of another project, each sending
  its body 6 bytes a second (reconnecting when cut off), and 16 gRPC calls whose
  message never comes.
- ``connection-flood``: 1,000 connections (reopened as they are closed) whose headers
  never finish, no key.
- ``huge-export``: two senders repeating a gzip export of 1.2 million tiny spans (refused
  by max_spans_per_export) and two repeating one of 20,000 (the limit: accepted and
  written in pieces).
- ``grpc-unauthenticated``: 48 concurrent gRPC calls of 15 MiB with an unknown key,
  repeated.
- ``waiting-events``: two senders repeating a logs export of 1,000 GenAI events (10 MB
  of messages) for one span that never comes, and a third exporting a span of the
  attacker's project every second (each is given the project's waiting events).

It is a benchmark, not a test: it prints figures (recorded in docs/reliability.md).
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

ROOT = Path(__file__).resolve().parent.parent
_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    grpc_port: int
    data_dir: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def key(self, project: str, scope: str = "full") -> str:
        sys.path.insert(0, str(ROOT / "src"))
        from threadline.server.store.sqlite import SQLiteStore

        store = SQLiteStore(self.data_dir / "threadline.db")
        try:
            return store.create_key(store.create_project(project).id, scope)  # type: ignore[arg-type]
        finally:
            store.close()


def start_server(root: Path, open_files: int, extra: list[str] | None = None) -> Server:
    port, grpc_port = free_port(), free_port()
    data_dir = root / "data"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "threadline.server", "serve", "--port", str(port)),
            *("--grpc-port", str(grpc_port), "--data-dir", str(data_dir)),
            *("--log-level", "warning"),
            *(extra or []),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        preexec_fn=limit,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return Server(process, port, grpc_port, data_dir)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


def export_of(spans: int, trace: int = 1, compressible: bool = False) -> ExportTraceServiceRequest:
    now = time.time_ns()
    items = []
    for i in range(spans):
        trace_id = (trace if compressible else int.from_bytes(os.urandom(16))).to_bytes(16)
        items.append(
            Span(
                trace_id=trace_id,
                span_id=(i + 1 if compressible else int.from_bytes(os.urandom(8)) | 1).to_bytes(8),
                name="s",
                start_time_unix_nano=now,
                end_time_unix_nano=now + 1000,
            )
        )
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=items)])]
    )


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    codes: dict[str, int] = field(default_factory=dict)

    def add(self, success: bool, code: object) -> None:
        if success:
            self.ok += 1
        else:
            self.failed += 1
            self.codes[str(code)] = self.codes.get(str(code), 0) + 1

    @property
    def rate(self) -> float:
        total = self.ok + self.failed
        return 100.0 * self.ok / total if total else float("nan")


class Victim:
    """Another project exporting steadily over HTTP and gRPC, counting its answers."""

    def __init__(self, server: Server, key: str) -> None:
        self.server, self.key = server, key
        self.http, self.grpc = Tally(), Tally()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._http, daemon=True),
            threading.Thread(target=self._grpc, daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def reset(self) -> None:
        self.http, self.grpc = Tally(), Tally()

    def _http(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/x-protobuf"}
        with httpx.Client(base_url=self.server.base_url, headers=headers, timeout=10) as client:
            while not self.stop.is_set():
                body = export_of(20).SerializeToString()
                try:
                    code: object = client.post("/v1/traces", content=body).status_code
                except httpx.HTTPError as error:
                    code = type(error).__name__
                self.http.add(code == 200, code)
                time.sleep(0.05)

    def _grpc(self) -> None:
        with grpc.insecure_channel(self.server.grpc_address) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            metadata = [("authorization", f"Bearer {self.key}")]
            while not self.stop.is_set():
                try:
                    stub.Export(export_of(20), metadata=metadata, timeout=10)
                    code: object = grpc.StatusCode.OK
                except grpc.RpcError as error:
                    code = error.code()
                self.grpc.add(code == grpc.StatusCode.OK, code)
                time.sleep(0.05)


def _repeat(stop: threading.Event, action: Callable[[], None]) -> None:
    while not stop.is_set():
        try:
            action()
        except (OSError, httpx.HTTPError, grpc.RpcError):
            time.sleep(0.05)


def login_body(server: Server, stop: threading.Event) -> list[threading.Thread]:
    def one() -> None:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-"
                b"urlencoded\r\nContent-Length: %d\r\n\r\n" % (1 << 30)
            )
            chunk = b"k" * (1 << 20)
            for _ in range(1024):
                if stop.is_set():
                    return
                sock.sendall(chunk)

    return [threading.Thread(target=_repeat, args=(stop, one), daemon=True) for _ in range(3)]


def slow_bodies(server: Server, stop: threading.Event) -> list[threading.Thread]:
    key = server.key("attacker", "ingest")

    def one() -> None:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf"
                b"\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n" % key.encode()
            )
            while not stop.is_set():
                sock.sendall(b"\x0a\x04abcd")
                time.sleep(1.0)

    def never(release: threading.Event) -> Iterator[bytes]:
        release.wait(60)
        yield from ()

    def slow_grpc() -> None:
        with grpc.insecure_channel(server.grpc_address) as channel:
            try:
                channel.stream_unary(_EXPORT)(
                    never(stop), metadata=[("authorization", f"Bearer {key}")], timeout=120
                )
            except grpc.RpcError:
                pass

    threads = [threading.Thread(target=_repeat, args=(stop, one), daemon=True) for _ in range(64)]
    threads += [
        threading.Thread(target=_repeat, args=(stop, slow_grpc), daemon=True) for _ in range(16)
    ]
    return threads


def connection_flood(server: Server, stop: threading.Event) -> list[threading.Thread]:
    def flood() -> None:
        sockets: list[socket.socket] = []
        while not stop.is_set():
            sockets = [s for s in sockets if _open(s)]
            while len(sockets) < 1000 and not stop.is_set():
                try:
                    sock = socket.create_connection(("127.0.0.1", server.port), timeout=2)
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost:")
                    sock.setblocking(False)
                    sockets.append(sock)
                except OSError:
                    break
            time.sleep(0.2)
        for sock in sockets:
            sock.close()

    return [threading.Thread(target=flood, daemon=True)]


def _open(sock: socket.socket) -> bool:
    try:
        if sock.recv(1) == b"":
            sock.close()
            return False
    except BlockingIOError:
        return True
    except OSError:
        sock.close()
        return False
    return True


def huge_export(server: Server, stop: threading.Event) -> list[threading.Thread]:
    key = server.key("attacker")
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "gzip",
    }
    refused = gzip.compress(export_of(1_200_000, compressible=True).SerializeToString(), 6)
    limit = gzip.compress(export_of(20_000, compressible=True).SerializeToString(), 6)
    print(f"  bodies: {len(refused) / 1e6:.1f} MB (1.2M spans), {len(limit) / 1e6:.1f} MB (20k)")

    def sender(body: bytes) -> Callable[[], None]:
        def one() -> None:
            httpx.post(server.base_url + "/v1/traces", content=body, headers=headers, timeout=120)

        return one

    return [
        threading.Thread(target=_repeat, args=(stop, sender(body)), daemon=True)
        for body in (refused, refused, limit, limit)
    ]


def grpc_unauthenticated(server: Server, stop: threading.Event) -> list[threading.Thread]:
    big = ExportTraceServiceRequest()
    big.resource_spans.add().resource.attributes.add(key="x").value.string_value = "x" * (15 << 20)
    message = big.SerializeToString()

    def one() -> None:
        with grpc.insecure_channel(
            server.grpc_address, options=[("grpc.max_send_message_length", 32 << 20)]
        ) as channel:
            call = channel.unary_unary(_EXPORT)
            try:
                call(message, metadata=[("authorization", "Bearer tl_unknown")], timeout=30)
            except grpc.RpcError:
                pass

    return [threading.Thread(target=_repeat, args=(stop, one), daemon=True) for _ in range(48)]


def waiting_events(server: Server, stop: threading.Event) -> list[threading.Thread]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    key = server.key("attacker")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
    export = ExportLogsServiceRequest()
    records = export.resource_logs.add().scope_logs.add().log_records
    for n in range(1_000):
        record = records.add(
            event_name="gen_ai.user.message",
            trace_id=(7).to_bytes(16, "big"),
            span_id=(1).to_bytes(8, "big"),
            time_unix_nano=n + 1,
        )
        record.body.kvlist_value.values.add(key="content").value.string_value = "x" * 10_000
    body = export.SerializeToString()
    spans = export_of(1, trace=8).SerializeToString()

    def events() -> None:
        httpx.post(server.base_url + "/v1/logs", content=body, headers=headers, timeout=120)

    def span_export() -> None:
        httpx.post(server.base_url + "/v1/traces", content=spans, headers=headers, timeout=120)
        stop.wait(1.0)

    return [
        threading.Thread(target=_repeat, args=(stop, action), daemon=True)
        for action in (events, events, span_export)
    ]


ATTACKS: dict[str, Callable[[Server, threading.Event], list[threading.Thread]]] = {
    "login-body": login_body,
    "slow-bodies": slow_bodies,
    "connection-flood": connection_flood,
    "huge-export": huge_export,
    "grpc-unauthenticated": grpc_unauthenticated,
    "waiting-events": waiting_events,
}


def peak_rss(server: Server, seconds: float) -> float:
    peak = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, server.rss_mb())
        time.sleep(0.05)
    return peak


def run(name: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="threadline-hostile-") as tmp:
        server = start_server(Path(tmp), args.open_files, shlex.split(args.serve))
        try:
            victim = Victim(server, server.key("victim"))
            victim.start()
            normal = peak_rss(server, args.baseline)
            baseline = (victim.http.rate, victim.grpc.rate)
            victim.reset()
            stop = threading.Event()
            attackers = ATTACKS[name](server, stop)
            for thread in attackers:
                thread.start()
            attacked = peak_rss(server, args.seconds)
            http, grpc_ = victim.http, victim.grpc
            stop.set()
            victim.stop.set()
            log = (Path(tmp) / "server.log").read_text(errors="replace")
        finally:
            server.process.terminate()
            try:
                server.process.wait(30)
            except subprocess.TimeoutExpired:
                server.process.kill()
    print(
        f"{name}: peak RSS {normal:.0f} MB normal, {attacked:.0f} MB attacked "
        f"({attacked / normal:.2f}x); victim during the attack: HTTP {http.rate:.1f} % of "
        f"{http.ok + http.failed} {http.codes or ''}, gRPC {grpc_.rate:.1f} % of "
        f"{grpc_.ok + grpc_.failed} {grpc_.codes or ''} (before: {baseline[0]:.0f} %, "
        f"{baseline[1]:.0f} %)"
    )
    if "unable to open database file" in log or "Traceback" in log:
        print(f"  server log had errors:\n{log[-1500:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attack", choices=sorted(ATTACKS), action="append")
    parser.add_argument("--seconds", type=float, default=15.0, help="Attack length.")
    parser.add_argument("--baseline", type=float, default=8.0, help="Normal load first.")
    parser.add_argument("--open-files", type=int, default=1024, help="Server's file limit.")
    parser.add_argument(
        "--serve", default="", help="More `threadline serve` flags, e.g. '--workers 2'."
    )
    args = parser.parse_args()
    for name in args.attack or list(ATTACKS):
        run(name, args)


if __name__ == "__main__":
    main()
