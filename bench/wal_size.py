"""The largest write-ahead log during steady ingest (and reads), for docs/reliability.md.

    python bench/wal_size.py --seconds 300

Starts the real server on a fresh data directory on loopback, keeps ``--senders``
exporters sending the workload of ``workload.py`` as fast as it answers (each export
new traces in new sessions, as a live system sends them) while ``--readers`` clients
list sessions and open them without pause, and samples the size of
``threadline.db-wal`` every 50 ms. Stops by itself after ``--seconds``, then prints the
largest WAL, its median and 99th percentile, the spans written and the WAL once ingest
is idle.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload

from tests.conftest import start_server, stop_server

TAG = "w0000"  # replaced by a new tag of the same length in every round
MB = 1024 * 1024


class Template:
    """One export of the workload whose session tag and trace ids are replaced each time
    it is sent, so that every export writes new traces into new sessions."""

    def __init__(self, body: bytes, spans: int) -> None:
        self.body = body
        self.spans = spans
        request = ExportTraceServiceRequest.FromString(body)
        self.trace_ids = sorted(
            {s.trace_id for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
        )

    def fresh(self, round_no: int, sender: int) -> bytes:
        body = self.body.replace(TAG.encode(), f"w{round_no:03d}{sender}".encode())
        for old in self.trace_ids:
            new = round_no.to_bytes(4, "big") + bytes([sender]) + old[5:]
            body = body.replace(old, new)
        return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--batch-spans", type=int, default=500)
    parser.add_argument(
        "--readers", type=int, default=2, help="clients reading without pause (0: none)"
    )
    args = parser.parse_args()

    templates = [
        Template(b.body, b.spans)
        for b in workload.batches(10_000, batch_spans=args.batch_spans, tag=TAG)
    ]
    with tempfile.TemporaryDirectory(prefix="threadline-wal-") as tmp:
        root = Path(tmp)
        server = start_server(root / "data", root / "server.log", "--grpc-port", "0")
        key = server.new_key("wal-bench")
        headers = {"Authorization": f"Bearer {key}"}
        wal = root / "data" / "threadline.db-wal"
        stop = threading.Event()
        sent = [0] * args.senders
        refused = [0] * args.senders
        samples: list[int] = []

        def send(sender: int) -> None:
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
                round_no = 0
                while not stop.is_set():
                    round_no += 1
                    for template in templates[sender :: args.senders]:
                        if stop.is_set():
                            return
                        answer = http.post(
                            "/v1/traces",
                            content=template.fresh(round_no, sender),
                            headers={"Content-Type": "application/x-protobuf"},
                        )
                        if answer.status_code == 200:
                            sent[sender] += template.spans
                        else:
                            refused[sender] += 1
                            time.sleep(0.2)

        def read() -> None:
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
                while not stop.is_set():
                    sessions = http.get("/api/v1/sessions", params={"limit": 50}).json()
                    for item in sessions.get("items", [])[:3]:
                        http.get(f"/api/v1/sessions/{item['session_id']}")

        def sample() -> None:
            while not stop.is_set():
                try:
                    samples.append(wal.stat().st_size)
                except FileNotFoundError:
                    samples.append(0)
                time.sleep(0.05)

        started = time.monotonic()
        threads = [threading.Thread(target=send, args=(i,)) for i in range(args.senders)]
        threads += [threading.Thread(target=read) for _ in range(args.readers)]
        threads.append(threading.Thread(target=sample))
        for thread in threads:
            thread.start()
        try:
            time.sleep(args.seconds)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        elapsed = time.monotonic() - started
        httpx.get(server.base_url + "/healthz?wait=60", timeout=70)
        time.sleep(2)  # an idle server empties its WAL
        idle = wal.stat().st_size if wal.exists() else 0
        stop_server(server)
        print(
            f"{elapsed:.0f} s of steady load, {args.senders} senders of {args.batch_spans}-span "
            f"exports and {args.readers} readers: {sum(sent):,} spans acknowledged "
            f"({sum(sent) / elapsed:,.0f}/s), {sum(refused)} exports refused (503, retried)"
        )
        p99 = statistics.quantiles(samples, n=100)[98]
        print(
            f"WAL: largest {max(samples) / MB:.1f} MB, median {statistics.median(samples) / MB:.1f}"
            f" MB, p99 {p99 / MB:.1f} MB over {len(samples)} samples; {idle / MB:.1f} MB 2 s"
            " after ingest stopped"
        )


if __name__ == "__main__":
    main()
