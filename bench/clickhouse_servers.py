"""Durable ingest of one and of several Threadline servers on one ClickHouse database.

    python tests/store/chdb_http.py --port 8124 --path /tmp/chbench &   # the engine
    python bench/clickhouse_servers.py --url clickhouse://default:@127.0.0.1:8124 \\
        --spans 20000 --servers 1 3

For each count of servers: a fresh database, that many ``threadline serve`` processes
(one worker each, a data directory each) on it, and the workload of ``workload.py``
sent over OTLP/HTTP, the exports dealt round-robin to the servers by ``--senders``
concurrent exporters each (two by default). The figure runs from the first export to
the moment every export is acknowledged, every server's intake queue is empty and the
last session reads back; then every session is checked to hold all its spans. With
``--engine-pid`` (the engine's process, when it runs on this machine) it also prints
the CPU time the servers (of it, the server processes' own, without their workers: the
writer's share is there) and the engine spent per 1,000 spans over the same interval:
unlike the rate, it hardly moves with what else loads the machine. It also prints how
many exports the servers' writers made the rows of, as ``/healthz`` counts them (the
worker left them: their sessions needed the writer, or the job lacked the project's
setting), beside the count with the setting known. ``--inference off``
turns the project's session inference off before the first export (the workload names
every trace's session on its root, but an export that holds a trace's later spans
without its root carries signals and no session id: with inference on, the writer makes
that export's rows, to name its session first).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import server as bench_server
import workload


def run(
    url: str,
    spans: int,
    servers: int,
    batch: int,
    settings: str = "",
    engine_pid: int = 0,
    senders: int = 2,
    inference: bool = True,
) -> tuple[float, float, float, float, int | None]:
    """Durable spans/s, the CPU milliseconds per 1,000 spans of the servers (their
    processes and workers), of the server processes alone and of the engine (0 without
    ``engine_pid``) over the run, and how many exports the servers' writers made the
    rows of (``/healthz``; None from a server that does not say)."""
    database = f"ingest_{servers}_{time.time_ns()}"
    store_url = f"{url.rstrip('/')}/{database}" + (f"?{settings}" if settings else "")
    bodies = list(workload.batches(spans, batch))
    with tempfile.TemporaryDirectory(prefix="threadline-ch-servers-") as tmp:
        started = [
            bench_server.start_server(Path(tmp) / f"data-{i}", 1, store_url) for i in range(servers)
        ]
        # One key for all: the first server's, read by every server from ClickHouse.
        key = started[0][2]
        try:
            for process, _, _ in started:
                bench_server.wait_settled(process.pid)
            headers = {"Authorization": f"Bearer {key}"}
            if not inference:
                httpx.put(
                    started[0][1] + "/api/v1/settings/session-inference",
                    json={"enabled": False},
                    headers=headers,
                    timeout=60,
                ).raise_for_status()
            shares = [bodies[i::servers] for i in range(servers)]
            results: list[bench_server.SendResult] = []
            server_cpu = sum(bench_server.tree_cpu_seconds(p.pid) for p, _, _ in started)
            own_cpu = sum(_own_cpu_seconds(p.pid) for p, _, _ in started)
            engine_cpu = bench_server.tree_cpu_seconds(engine_pid) if engine_pid else 0.0
            began = time.perf_counter()
            threads = [
                threading.Thread(
                    target=lambda u=base_url, s=share: results.append(
                        bench_server.send_all(u, headers, s, senders)
                    )
                )
                for (_, base_url, _), share in zip(started, shares, strict=True)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for result in results:
                if result.failures:
                    raise SystemExit(result.failures[0])
            for _, base_url, _ in started:
                while httpx.get(base_url + "/healthz", params={"wait": 10}, timeout=60).json()[
                    "queued_exports"
                ]:
                    pass
            last = bodies[-1].session_ids[-1]
            with httpx.Client(base_url=started[0][1], headers=headers, timeout=60) as api:
                while api.get(f"/api/v1/sessions/{last}").status_code != 200:
                    time.sleep(0.001)
                elapsed = time.perf_counter() - began
                server_cpu = (
                    sum(bench_server.tree_cpu_seconds(p.pid) for p, _, _ in started) - server_cpu
                )
                own_cpu = sum(_own_cpu_seconds(p.pid) for p, _, _ in started) - own_cpu
                if engine_pid:
                    engine_cpu = bench_server.tree_cpu_seconds(engine_pid) - engine_cpu
                per_session = workload.SPANS_PER_TRACE * workload.TRACES_PER_SESSION
                session_ids = {s for body in bodies for s in body.session_ids}

                def span_count(session_id: str) -> int:
                    # A loaded server may answer 503 (retry later), as to an exporter.
                    while True:
                        answer = api.get(f"/api/v1/sessions/{session_id}")
                        if answer.status_code == 200:
                            return int(answer.json()["span_count"])
                        time.sleep(0.1)

                # Read back several at a time: the check is not timed.
                with ThreadPoolExecutor(4) as readers:
                    counted = sum(readers.map(span_count, sorted(session_ids)))
                expected = len(session_ids) * per_session
                if counted != expected:
                    raise SystemExit(f"{counted} spans read back, {expected} sent")
            healths = [httpx.get(u + "/healthz", timeout=60).json() for _, u, _ in started]
            made = [h.get("exports_prepared_by_writer") for h in healths]
            return (
                spans / elapsed,
                server_cpu * 1e6 / spans,
                own_cpu * 1e6 / spans,
                engine_cpu * 1e6 / spans,
                None if None in made else sum(m for m in made if m is not None),
            )
        finally:
            for process, _, _ in started:
                process.terminate()
                process.wait()


def writer_made(bodies: list[workload.Batch], inference: bool) -> int:
    """How many of ``bodies`` a server's worker leaves whole for its writer to make the
    rows of (to name their sessions), the project's setting known: the store's own
    preparer, run here on each export's records."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from threadline.server.ingest.normalize import normalize_request
    from threadline.server.store.clickhouse.export_rows import RowsPreparer

    preparer = RowsPreparer(infers_sessions=inference)
    return sum(
        preparer(1, normalize_request(ExportTraceServiceRequest.FromString(b.body)).spans) is None
        for b in bodies
    )


def _own_cpu_seconds(pid: int) -> float:
    """CPU time used so far by the process ``pid`` alone, not its workers."""
    return bench_server.cpu_seconds(Path(f"/proc/{pid}/stat"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="clickhouse://user:pw@host:port (no db)")
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=512, help="spans per export")
    parser.add_argument("--servers", type=int, nargs="+", default=[1, 3])
    parser.add_argument(
        "--settings", default="", help="ClickHouse settings for the store URL: async_insert=0"
    )
    parser.add_argument(
        "--engine-pid", type=int, default=0, help="the engine's process, for its CPU time"
    )
    parser.add_argument("--senders", type=int, default=2, help="concurrent exporters a server")
    parser.add_argument(
        "--inference", choices=("on", "off"), default="on", help="the project's session inference"
    )
    args = parser.parse_args()
    bodies = list(workload.batches(args.spans, args.batch))
    print(
        f"exports whose rows the writer makes (setting known):"
        f" {writer_made(bodies, args.inference == 'on')} of {len(bodies)}",
        flush=True,
    )
    for servers in args.servers:
        rate, server_ms, own_ms, engine_ms, made = run(
            args.url,
            args.spans,
            servers,
            args.batch,
            args.settings,
            args.engine_pid,
            args.senders,
            args.inference == "on",
        )
        engine = f", engine {engine_ms:,.0f}" if args.engine_pid else ""
        in_writer = "-" if made is None else f"{made}"
        print(
            f"{servers} server(s), {args.senders} senders each, inference {args.inference}:"
            f" {rate:,.0f} durable spans/s"
            f" ({args.spans:,} spans);"
            f" CPU ms per 1,000 spans: servers {server_ms:,.0f}"
            f" (server processes alone {own_ms:,.0f}){engine};"
            f" exports whose rows the writers made: {in_writer} of {len(bodies)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
