"""Benchmark the real server: durable ingest rate, query latency, memory, disk.

    python bench/server.py --spans 100000
    python bench/server.py --spans 20000 --chdb          # the ClickHouse store on chDB
    python bench/server.py --store clickhouse://user:pw@host:8123/bench   # a real server

Starts ``threadline serve`` on a fresh data directory (or on ``--store``), sends the workload of
``workload.py`` over OTLP/HTTP from a few concurrent senders (as several exporters
would), and prints:

- durable spans/s: from the first export to the moment every export is acknowledged,
  ``/healthz`` reports none in hand (with the code before the one write path, an
  acknowledged export could still be queued on disk) and the last session is readable
  in the API;
- sessions-list, session-detail and trace-detail latency p50/p95 through the API;
- the server's peak RSS and bytes on disk per span (for ClickHouse, the active parts of
  the database).

``--chdb`` starts ``tests/store/chdb_http.py`` (ClickHouse's engine embedded in a Python
process, behind a minimal HTTP endpoint that runs one statement at a time) as the
ClickHouse server: it checks the ClickHouse store end to end where no ClickHouse server
can be installed, but its numbers are not a ClickHouse server's (see benchmarks.md).

``--ceiling`` also measures, in the same run, the raw SQLite ceiling of the same exports
(``sqlite_ceiling.py`` defines it: the span rows as the workers make them, prepared
beforehand, written by one thread into the store's own ``spans`` table with its index,
pragmas and checkpointer, as many exports a transaction as the server committed) and
prints the durable rate as a share of it, over ``--repeat`` pairs that alternate the two
arms (server, ceiling, ceiling, server, ...). Beside it, the store's whole write
transaction (search index and rollups too) on the same exports from one thread.

It is a benchmark, not a test: it prints numbers and fails only if the data is wrong.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload

PROTOBUF = "application/x-protobuf"
# hooks/sitecustomize.py installs the benchmark hooks this variable names.
HOOKS = Path(__file__).resolve().parent / "hooks"
HOOK_NAMES = "THREADLINE_BENCH_HOOKS"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_key(data_dir: Path, store_args: Sequence[str] = ()) -> str:
    """A full key of a new project (``threadline keys create``), the store created."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "threadline.server",
            "keys",
            "create",
            "--create-store",
            "--data-dir",
            str(data_dir),
            *store_args,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.strip().splitlines()[-1]


def serve_command(data_dir: Path, port: int, workers: int, *args: str) -> list[str]:
    """``threadline serve`` on loopback ``port``, quiet, without OTLP/gRPC."""
    return [
        sys.executable,
        "-m",
        "threadline.server",
        "serve",
        "--data-dir",
        str(data_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--workers",
        str(workers),
        "--grpc-port",
        "0",
        *args,
    ]


@contextmanager
def server_environment(hooks: Sequence[str] = (), source: str | None = None) -> Iterator[None]:
    """Servers started inside run with the benchmark ``hooks`` (hooks/sitecustomize.py)
    besides those the environment names already, and with their code from ``source`` (a
    checkout's ``src``) when given."""
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", HOOK_NAMES)}
    first = [*([source] if source else []), *([str(HOOKS)] if hooks else [])]
    # No empty entry: on PYTHONPATH it would name the working directory.
    paths = [p for p in (*first, saved["PYTHONPATH"]) if p]
    names = [n for n in (*hooks, saved[HOOK_NAMES]) if n]
    if paths:
        os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    if names:
        os.environ[HOOK_NAMES] = ",".join(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def start_server(
    data_dir: Path, workers: int, store: str | None = None, serve_args: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], str, str]:
    store_args = ["--store", store] if store else []
    key = create_key(data_dir, store_args)
    port = free_port()
    process = subprocess.Popen(serve_command(data_dir, port, workers, *store_args, *serve_args))
    base_url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base_url + "/healthz", timeout=1)
            return process, base_url, key
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def stored_sessions(client: httpx.Client) -> tuple[int, int]:
    """How many sessions the API lists, of all time (the lists default to the last 7
    days, the workload is older), and their spans."""
    sessions, spans, cursor = 0, 0, None
    while True:
        params: dict[str, str | int] = {"limit": 500, "window": "all"}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/sessions", params=params).json()
        sessions += len(page["items"])
        spans += sum(s["span_count"] for s in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return sessions, spans


@dataclass
class SendResult:
    started: float = 0.0  # perf_counter() when the first export was sent
    elapsed: float = 0.0  # first export to last acknowledgement
    answers_429: int = 0
    answers_503: int = 0
    failures: list[str] = field(default_factory=list)
    # Seconds from sending each export to its 200 (retries included).
    answer_times: list[float] = field(default_factory=list)


def send_all(
    base_url: str,
    headers: dict[str, str],
    bodies: Iterable[workload.Batch],
    senders: int,
    deadline: float = math.inf,
    interval: float = 0.0,
) -> SendResult:
    """Send every batch to ``/v1/traces`` from ``senders`` threads, each over one
    keep-alive connection, retrying 429/503 as OTLP exporters do. With ``interval``,
    the n-th export is not sent before ``n * interval`` seconds from the start (a
    steady load), else each as soon as a sender is free.

    The senders share the machine with the server they measure, so they are kept cheap:
    the standard library's ``http.client`` spends ~2 µs of CPU per span here, httpx
    spent ~11 (docs/benchmarks.md). Connections are opened before the clock starts.
    """
    url = urlsplit(base_url)
    assert url.hostname is not None, base_url
    headers = {**headers, "Content-Type": PROTOBUF}
    lock = threading.Lock()
    queue = iter(bodies)
    result = SendResult()
    connections = [
        http.client.HTTPConnection(url.hostname, url.port, timeout=60) for _ in range(senders)
    ]
    for connection in connections:
        connection.connect()
    ready = threading.Barrier(senders + 1)

    def fail(message: str) -> None:
        with lock:
            result.failures.append(message)

    def send(connection: http.client.HTTPConnection, body: bytes) -> bool:
        while time.monotonic() < deadline:
            try:
                connection.request("POST", "/v1/traces", body, headers)
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as error:
                fail(f"transport error: {error!r}")
                return False
            if response.status == 200:
                return True
            if response.status not in (429, 503):
                fail(f"export answered {response.status}: {answer[:200]!r}")
                return False
            with lock:
                if response.status == 429:
                    result.answers_429 += 1
                else:
                    result.answers_503 += 1
            time.sleep(float(response.getheader("retry-after") or 0.1))
        fail("send deadline passed")
        return False

    taken = 0

    def sender(connection: http.client.HTTPConnection) -> None:
        nonlocal taken
        ready.wait()
        with closing(connection):
            while True:
                with lock:
                    batch = next(queue, None)
                    if batch is None or result.failures:
                        return
                    due = result.started + taken * interval
                    taken += 1
                if interval:
                    time.sleep(max(0.0, due - time.perf_counter()))
                sent_at = time.perf_counter()
                if not send(connection, batch.body):
                    return
                with lock:
                    result.answer_times.append(time.perf_counter() - sent_at)

    threads = [
        threading.Thread(target=sender, args=(connection,), daemon=True)
        for connection in connections
    ]
    for thread in threads:
        thread.start()
    result.started = time.perf_counter()
    ready.wait()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - result.started
    return result


def latencies(client: httpx.Client, paths: list[str]) -> tuple[float, float]:
    """p50 and p95 in ms of GETting ``paths``; any answer but 200 stops the benchmark."""
    times = []
    for path in paths:
        t = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - t) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:200]}")
    return p50_p95(times)


def p50_p95(times_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(times_ms)
    return statistics.median(ordered), ordered[max(int(len(ordered) * 0.95) - 1, 0)]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def descendants(pid: int) -> list[int]:
    """Every process started by ``pid``, and by those, down the tree."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def cpu_seconds(stat: Path) -> float:
    """CPU time (user and system) in a ``/proc`` stat file of a process or thread; 0 if
    it has ended."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and its descendants."""
    return sum(cpu_seconds(Path(f"/proc/{each}/stat")) for each in [pid, *descendants(pid)])


def threads_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU time of each thread of the server process, by thread id."""
    return {
        int(task.name): cpu_seconds(task / "stat") for task in Path(f"/proc/{pid}/task").iterdir()
    }


def threads_by_name(pid: int) -> dict[int, str]:
    """The kernel's name of each thread of a process, by thread id (a Python thread's own
    name with the ``thread_names`` hook, else the process's)."""
    names = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            names[int(task.name)] = (task / "comm").read_text().strip()
        except OSError:
            continue  # ended meanwhile
    return names


class Ingest(NamedTuple):
    """A running server's ingest of some exports, until every span was written."""

    elapsed: float  # seconds, from the first export sent to every span written
    cpu: float  # CPU seconds of the server and its workers
    main: float  # CPU seconds of the server's own process (its threads)
    writer: float  # CPU seconds of its busiest thread: the writer, during ingest
    health: dict[str, Any]  # /healthz once every span was written
    # CPU seconds of its WAL checkpointer thread (0 unless the server runs with the
    # ``thread_names`` hook, which names it)
    checkpointer: float = 0.0


def measured_ingest(
    process: subprocess.Popen[bytes],
    base_url: str,
    key: str,
    exports: list[workload.Batch],
    senders: int,
) -> Ingest:
    """Send ``exports`` to a started server from ``senders`` exporters and wait until
    every span is written, with the CPU its processes and threads spent meanwhile
    (read once the server has settled after its start)."""
    wait_settled(process.pid)
    cpu, threads = tree_cpu_seconds(process.pid), threads_cpu_seconds(process.pid)
    headers = {"Authorization": f"Bearer {key}"}
    sent = send_all(base_url, headers, exports, senders)
    if sent.failures:
        raise SystemExit(sent.failures[0])
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        while (health := client.get("/healthz", params={"wait": 10}).json())["queued_exports"]:
            pass
    elapsed = time.perf_counter() - sent.started
    cpu = tree_cpu_seconds(process.pid) - cpu
    now = threads_cpu_seconds(process.pid)
    # The writer thread is the server process's busiest during ingest.
    writer = max(spent - threads.get(tid, 0.0) for tid, spent in now.items())
    checkpointer = sum(
        now.get(tid, 0.0) - threads.get(tid, 0.0)
        for tid, name in threads_by_name(process.pid).items()
        if name == "threadline-chec"
    )
    main = sum(now.values()) - sum(threads.values())
    return Ingest(elapsed, cpu, main, writer, health, checkpointer)


def wait_settled(pid: int, timeout: float = 30) -> None:
    """Until a server's processes stop using the CPU. A server answers its health check
    before all of its workers have finished starting: a short run would count the rest
    of the start-up as ingest, and senders' keep-alive connections would all go to the
    workers that were ready."""
    deadline = time.monotonic() + timeout
    used = tree_cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        before, used = used, tree_cpu_seconds(pid)
        if used - before < 0.03:
            return


def thread_cpu_seconds(pids: list[int]) -> dict[tuple[int, int], float]:
    """CPU time used so far by each thread of ``pids``, by (process, thread) id."""
    return {
        (pid, int(task.name)): cpu_seconds(task / "stat")
        for pid in pids
        for task in Path(f"/proc/{pid}/task").iterdir()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=512, help="spans per export")
    parser.add_argument("--senders", type=int, default=4, help="concurrent exporters")
    parser.add_argument("--queries", type=int, default=200, help="requests per latency figure")
    parser.add_argument("--workers", type=int, default=2, help="--workers of the server")
    parser.add_argument(
        "--steady",
        type=float,
        default=0.0,
        help="after the timed ingest, send --steady-spans more at this fraction of the "
        "measured rate and print the p50/p99 time to answer an export (e.g. 0.8)",
    )
    parser.add_argument("--steady-spans", type=int, default=30_000)
    parser.add_argument(
        "--store", default=None, help="storage URL (default: SQLite in a temporary data directory)"
    )
    parser.add_argument(
        "--chdb",
        action="store_true",
        help="the ClickHouse store on a chDB endpoint started for the run",
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also measure the raw SQLite ceiling of the same exports (sqlite_ceiling.py) "
        "and print the server's share of it, in --repeat pairs alternating the arms",
    )
    parser.add_argument("--repeat", type=int, default=1, help="pairs with --ceiling")
    args = parser.parse_args()
    if args.ceiling and (args.store or args.chdb):
        raise SystemExit("--ceiling is SQLite's: not with --store or --chdb")
    # The workload sends whole sessions: each figure a span divides by the spans sent.
    session = workload.SPANS_PER_TRACE * workload.TRACES_PER_SESSION
    if args.spans < session or (args.steady and args.steady_spans < session):
        parser.error(f"--spans and --steady-spans: at least {session} (one session)")
    if args.spans % session or args.steady_spans % session:
        args.spans -= args.spans % session
        args.steady_spans -= args.steady_spans % session
        print(
            f"whole sessions of {session} spans: --spans {args.spans},"
            f" --steady-spans {args.steady_spans}"
        )
    chdb = start_chdb() if args.chdb else None
    if chdb is not None:
        args.store = f"clickhouse://default:@127.0.0.1:{chdb[1]}/bench"

    print(f"generating {args.spans} spans ...", flush=True)
    bodies = list(workload.batches(args.spans, args.batch))
    wire = sum(len(b.body) for b in bodies)
    print(f"{len(bodies)} exports, {wire / args.spans:.0f} bytes of protobuf per span")

    if args.ceiling:
        ceiling_pairs(args, bodies)
    else:
        serve_once(args, bodies, chdb)


@dataclass
class Served:
    """What ``serve_once`` measured that the ceiling's pairs use."""

    rate: float  # durable spans/s
    cpu_us: float  # the server's CPU a span during ingest, all of its processes
    exports_per_transaction: float  # the writer's mean group (1 if not said)


def serve_once(
    args: argparse.Namespace,
    bodies: list[workload.Batch],
    chdb: tuple[subprocess.Popen[bytes], int] | None,
) -> Served:
    """One server on a fresh store: the ingest timed, checked, the reads timed; prints
    every figure."""
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        data_dir = Path(tmp)
        process, base_url, key = start_server(data_dir, args.workers, args.store)
        # Every worker started before the clock starts (see wait_settled).
        wait_settled(process.pid)
        try:
            client = httpx.Client(
                base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
            )
            last_session = bodies[-1].session_ids[-1]
            server_pids = [process.pid, *descendants(process.pid)]
            cpu_before = thread_cpu_seconds(server_pids)
            sent = send_all(base_url, {"Authorization": f"Bearer {key}"}, bodies, args.senders)
            if sent.failures:
                raise SystemExit(sent.failures[0])
            started = sent.started
            retries = sent.answers_429 + sent.answers_503
            # The code before the one write path answered some exports before writing
            # them (an intake queue): wait until none is in hand, for an A/B against it.
            while (health := client.get("/healthz", params={"wait": 10}).json())["queued_exports"]:
                pass
            while client.get(f"/api/v1/sessions/{last_session}").status_code != 200:
                time.sleep(0.001)
            elapsed = time.perf_counter() - started
            cpu_after = thread_cpu_seconds(server_pids)

            # Everything sent is there, exactly once (untimed).
            sessions = args.spans // (workload.SPANS_PER_TRACE * workload.TRACES_PER_SESSION)
            seen, spans = stored_sessions(client)
            assert (seen, spans) == (sessions, args.spans), (seen, spans)

            rng = random.Random(3)
            session_ids = [f"bench-{rng.randrange(sessions):07d}" for _ in range(args.queries)]
            trace_ids = []
            for session_id in session_ids[: args.queries // 5]:
                detail = client.get(f"/api/v1/sessions/{session_id}").json()
                trace_ids += [t["trace_id"] for t in detail["traces"]]
            listed = "/api/v1/sessions?limit=50&window=all"
            list_p = latencies(client, [listed] * args.queries)
            page2 = client.get(listed).json()["next_cursor"]
            # A store of 50 sessions or fewer has no second page to time.
            list2_p = (
                latencies(client, [f"{listed}&cursor={page2}"] * args.queries) if page2 else None
            )
            detail_p = latencies(client, [f"/api/v1/sessions/{s}" for s in session_ids])
            trace_p = latencies(client, [f"/api/v1/traces/{t}" for t in trace_ids[: args.queries]])
            steady = None
            if args.steady:
                # A steady load at a fraction of the rate just measured, on new sessions.
                rate = args.steady * args.spans / elapsed
                extra = list(workload.batches(args.steady_spans, args.batch, tag="steady"))
                steady_sent = send_all(
                    base_url,
                    {"Authorization": f"Bearer {key}"},
                    extra,
                    args.senders,
                    interval=args.batch / rate,
                )
                if steady_sent.failures:
                    raise SystemExit(steady_sent.failures[0])
                times = sorted(steady_sent.answer_times)
                steady = (
                    rate,
                    times[len(times) // 2] * 1e3,
                    times[min(len(times) - 1, int(len(times) * 0.99))] * 1e3,
                    args.steady_spans / steady_sent.elapsed,
                )
            each_rss = [peak_rss_mb(process.pid)] + [
                peak_rss_mb(pid) for pid in descendants(process.pid)
            ]
            rss = sum(each_rss)
        finally:
            process.terminate()
            process.wait()
        if args.store:
            disk = clickhouse_bytes(args.store)
            if chdb is not None:
                engine_rss = peak_rss_mb(chdb[0].pid)
                chdb[0].terminate()
                chdb[0].wait()
        else:
            # After a clean stop, so the write-ahead log is folded into the database file.
            disk = sum(f.stat().st_size for f in data_dir.iterdir() if f.is_file())

    print(
        f"durable ingest:        {args.spans / elapsed:,.0f} spans/s "
        f"({args.spans} spans in {elapsed:.1f} s, {retries} retries after 429/503)"
    )
    if "write_transactions" in health:  # group commit: the exports per transaction
        print(
            f"write transactions:    {health['write_transactions']:,} for"
            f" {health['exports_written']:,} exports"
        )
    print(f"sessions list p50/p95: {list_p[0]:.1f} / {list_p[1]:.1f} ms (first page of 50)")
    if list2_p:
        print(f"sessions page 2:       {list2_p[0]:.1f} / {list2_p[1]:.1f} ms")
    print(f"session detail:        {detail_p[0]:.1f} / {detail_p[1]:.1f} ms")
    print(f"trace detail p50/p95:  {trace_p[0]:.1f} / {trace_p[1]:.1f} ms (10 spans)")
    # Which threads the ingest kept busy (the ingest thread, the event loop, the WAL
    # checkpointer, in that order in practice): µs of CPU per span during the ingest.
    # It also shows how the load fell on the workers: a sender keeps its keep-alive
    # connection with the worker that accepted it until a busy worker sheds it.
    per_process: dict[int, list[float]] = {}
    for (pid, tid), seconds in cpu_after.items():
        spent = seconds - cpu_before.get((pid, tid), 0.0)
        if spent >= 0.01:
            per_process.setdefault(pid, []).append(spent / args.spans * 1e6)
    busiest = "; ".join(
        f"process {pid}: " + ", ".join(f"{us:.0f}" for us in sorted(threads, reverse=True)[:4])
        for pid, threads in sorted(per_process.items())
    )
    print(
        f"server CPU per span:   {sum(map(sum, per_process.values())):.0f} µs during ingest "
        f"(busiest threads, µs/span: {busiest})"
    )
    if steady is not None:
        print(
            f"steady load:           {steady[0]:,.0f} spans/s offered ({args.steady:.0%}), "
            f"{steady[3]:,.0f} taken; answer p50/p99 {steady[1]:.0f} / {steady[2]:.0f} ms"
        )
    print(
        f"server peak RSS:       {rss:.0f} MB (the server process, then each it started: "
        f"{', '.join(f'{mb:.0f}' for mb in each_rss)})"
    )
    if chdb is not None:
        print(f"chDB endpoint peak RSS: {engine_rss:.0f} MB")
    print(f"disk:                  {disk / args.spans:,.0f} bytes per span ({disk / 1e6:.0f} MB)")
    return Served(
        args.spans / elapsed,
        sum(map(sum, per_process.values())),
        health["exports_written"] / health["write_transactions"]
        if health.get("write_transactions")
        else 1.0,
    )


def ceiling_pairs(args: argparse.Namespace, bodies: list[workload.Batch]) -> None:
    """``--repeat`` pairs of a server run and the raw SQLite ceiling of the same exports
    (server, ceiling; then ceiling, server; ...), and the server's share of the ceiling.
    The ceiling commits as many exports a transaction as the last server run did on
    average, so the first pair starts with the server."""
    import sqlite_ceiling

    with tempfile.TemporaryDirectory(prefix="threadline-ceiling-") as tmp:
        print("preparing the exports as the workers do (untimed) ...", flush=True)
        ready = sqlite_ceiling.make_ready(bodies, Path(tmp))
        served: list[float] = []
        ceilings: list[float] = []
        group = 1
        for run in range(args.repeat):
            for arm in ("server", "ceiling") if run % 2 == 0 else ("ceiling", "server"):
                if arm == "server":
                    result = serve_once(args, bodies, None)
                    served.append(result.rate)
                    group = max(1, round(result.exports_per_transaction))
                    print(
                        f"[pair {run + 1}] server {result.rate:,.0f} spans/s, "
                        f"{result.cpu_us:.0f} µs of CPU a span (load {_load()})"
                    )
                    continue
                raw = sqlite_ceiling.raw_rate(ready, group)
                writer = sqlite_ceiling.writer_rate(ready, group)
                ceilings.append(raw.spans_per_s)
                print(
                    f"[pair {run + 1}] raw SQLite ceiling {raw.spans_per_s:,.0f} spans/s, "
                    f"{raw.cpu_us:.1f} µs a span; the store's whole write transaction alone "
                    f"{writer.spans_per_s:,.0f} spans/s, {writer.cpu_us:.1f} µs a span "
                    f"({group} exports a transaction, one thread; load {_load()})",
                    flush=True,
                )
        shares = [rate / ceiling for rate, ceiling in zip(served, ceilings, strict=True)]
        print(
            f"durable ingest as a share of the raw SQLite ceiling, by pair: "
            f"{', '.join(f'{share:.0%}' for share in shares)} "
            f"(median {statistics.median(shares):.0%}; server "
            f"{', '.join(f'{r:,.0f}' for r in served)}, ceiling "
            f"{', '.join(f'{c:,.0f}' for c in ceilings)} spans/s)"
        )


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def start_chdb() -> tuple[subprocess.Popen[bytes], int]:
    """The chDB endpoint of the tests, in a process of its own (as a server would be)."""
    port = free_port()
    endpoint = Path(__file__).resolve().parent.parent / "tests" / "store" / "chdb_http.py"
    process = subprocess.Popen([sys.executable, str(endpoint), "--port", str(port)])
    atexit.register(process.terminate)  # also when the benchmark stops on an error
    for _ in range(400):
        try:
            httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1)
            return process, port
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("chDB endpoint did not start")


def clickhouse_bytes(url: str) -> int:
    """Bytes of the active parts of the store's database (merged or not)."""
    from threadline.server.store.clickhouse.store import _client

    client = _client(url)
    try:
        return int(
            client.query(
                "SELECT sum(bytes_on_disk) FROM system.parts"
                " WHERE database = currentDatabase() AND active"
            ).result_rows[0][0]
        )
    finally:
        client.close()


if __name__ == "__main__":
    main()
