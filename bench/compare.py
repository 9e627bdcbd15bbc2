"""Benchmark Threadline and Arize Phoenix side by side, on this machine, in one run.

    python bench/compare.py --spans 10000 --repeat 3

Run it with the Python that has Threadline installed. Arize Phoenix is installed into
its own virtual environment (``.bench-venvs/phoenix`` under the repository, or
``--venvs-dir``) the first time; after that the run needs no network.

Both servers get the same deterministic workload of ``workload.py`` in its
``openinference`` flavour (``session.id``, ``user.id``, ``input.value``, ``output.value``,
``openinference.span.kind``, ``llm.model_name``, ``llm.token_count.*``: keys both read),
over OTLP/HTTP protobuf from the same concurrent senders, each on a fresh SQLite store in
a temporary directory, listening on loopback only. Each server's clock starts once it
is healthy and its processes have gone quiet (every worker started). For each server it
prints, as medians over ``--repeat`` runs:

- durable ingest: spans/s from the first export until every span is queryable through
  the server's own API (Threadline: every export acknowledged, its intake queue empty,
  waited for with ``/healthz?wait=``, and the last session readable; Phoenix
  acknowledges before it writes, so its span count is polled, every 0.25 s, until it
  reaches the number sent);
- accepted rate: spans/s from the first export to the last acknowledgement, and the
  number of 429 and 503 answers (retried, as OTLP exporters do);
- sessions list, session detail and trace detail latency p50/p95 through the API;
- peak RSS of the server's process tree, and bytes on disk per span after a clean stop;

and the ratio Threadline / Phoenix of each. It also measures the raw SQLite ceiling of
``sqlite_ceiling.py`` (the same spans made ready once as Threadline's workers make them,
untimed, then their rows written by one thread into the store's own ``spans`` table, one
export of 512 spans a transaction), and Threadline's durable ingest as a fraction of it.

It is a benchmark, not a test: it prints numbers and does not fail on timing. A server
that does not finish within the time limits is reported as such. Every server it starts
is stopped, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from threadline.server.store.sqlite.driver import sqlite3

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import sqlite_ceiling  # noqa: E402 - found through the path set just above
import workload  # noqa: E402
from server import (  # noqa: E402 - the helpers bench/server.py shares
    create_key,
    descendants,
    free_port,
    latencies,
    p50_p95,
    send_all,
    serve_command,
    stored_sessions,
    wait_settled,
)

REPO = BENCH.parent

# Started as `python -c` in Phoenix's environment. Phoenix binds its OTLP/gRPC receiver
# to every interface ("[::]:port") whatever PHOENIX_HOST says; this keeps it on loopback.
_PHOENIX_LAUNCHER = """
import sys
from grpc.aio import _server
_add = _server.Server.add_insecure_port
_server.Server.add_insecure_port = lambda self, address: _add(
    self, address.replace("[::]", "127.0.0.1"))
from phoenix.server.main import main
sys.argv = ["phoenix", "serve"]
sys.exit(main())
"""


# --------------------------------------------------------------------------- helpers


def tree_peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its descendants, summed."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started in its own process group: SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def wait_healthy(process: subprocess.Popen[bytes], url: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer {url} within {timeout:.0f} s; see {log}")


class Spool:
    """The workload written to a file once, then read back export by export: a scale
    run of millions of spans would not fit in memory as a list of bodies."""

    def __init__(self, path: Path, total: int, batch: int, flavour: str) -> None:
        self.path = path
        self.exports = 0
        self.wire_bytes = 0
        self.last_session = ""
        with path.open("wb") as out:
            for b in workload.batches(total, batch, flavour=flavour):
                out.write(b.spans.to_bytes(4, "big") + len(b.body).to_bytes(4, "big") + b.body)
                self.exports += 1
                self.wire_bytes += len(b.body)
                self.last_session = b.session_ids[-1] if b.session_ids else self.last_session

    def __iter__(self) -> Iterator[workload.Batch]:
        with self.path.open("rb") as source:
            while header := source.read(8):
                spans, size = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")
                yield workload.Batch(source.read(size), spans, ())


@dataclass
class RunResult:
    durable: float | None = None  # spans/s
    accepted: float | None = None  # spans/s
    answers_429: int = 0
    answers_503: int = 0
    list_ms: tuple[float, float] | None = None
    detail_ms: tuple[float, float] | None = None
    trace_ms: tuple[float, float] | None = None
    rss_mb: float | None = None
    disk_per_span: float | None = None
    empty_store_bytes: int | None = None
    # Phoenix only: the GraphQL queries its web UI sends for the same three views.
    ui_list_ms: tuple[float, float] | None = None
    ui_detail_ms: tuple[float, float] | None = None
    ui_trace_ms: tuple[float, float] | None = None
    note: str = ""


# --------------------------------------------------------------------------- servers


class Server:
    name = ""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self.headers: dict[str, str] = {}

    def start(self) -> None:
        raise NotImplementedError

    def data_dir(self) -> Path:
        raise NotImplementedError

    def wait_durable(
        self, client: httpx.Client, last_session: str, total: int, deadline: float
    ) -> bool:
        raise NotImplementedError

    def verify(self, client: httpx.Client, sessions: int, total: int) -> str:
        raise NotImplementedError

    def visible_spans(self, client: httpx.Client) -> int | None:
        """Spans queryable now, where the API says so cheaply (for a run that timed out)."""
        return None

    def query_paths(
        self, client: httpx.Client, session_ids: list[str], queries: int
    ) -> tuple[list[str], list[str], list[str]]:
        raise NotImplementedError

    def ui_latencies(
        self, client: httpx.Client, session_ids: list[str], queries: int, result: RunResult
    ) -> None:
        """Latency of the queries of the server's own web UI, where they differ."""


class ThreadlineServer(Server):
    name = "Threadline"

    def __init__(self, tmp: Path, workers: int) -> None:
        super().__init__(tmp)
        self.workers = workers

    def data_dir(self) -> Path:
        return self.tmp / "data"

    def start(self) -> None:
        self.data_dir().mkdir()
        key = create_key(self.data_dir())
        self.headers = {"Authorization": f"Bearer {key}"}
        port = free_port()
        log = self.tmp / "server.log"
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                serve_command(self.data_dir(), port, self.workers),
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.base_url = f"http://127.0.0.1:{port}"
        wait_healthy(self.process, self.base_url + "/healthz", 120, log)

    def wait_durable(
        self, client: httpx.Client, last_session: str, total: int, deadline: float
    ) -> bool:
        # Every export was acknowledged: written, or queued to be written moments later.
        # An empty queue means every span is queryable; the last session is read to
        # see it through the API.
        while time.monotonic() < deadline:
            # /healthz?wait= answers once the queue is empty (or after 10 s), so the
            # server spends no CPU on being polled.
            if (
                client.get("/healthz", params={"wait": 10}).json()["queued_exports"] == 0
                and client.get(f"/api/v1/sessions/{last_session}").status_code == 200
            ):
                return True
        return False

    def verify(self, client: httpx.Client, sessions: int, total: int) -> str:
        seen, spans = stored_sessions(client)
        if (seen, spans) != (sessions, total):
            return f"DATA MISMATCH: {seen} sessions, {spans} spans"
        return ""

    def query_paths(
        self, client: httpx.Client, session_ids: list[str], queries: int
    ) -> tuple[list[str], list[str], list[str]]:
        trace_ids: list[str] = []
        for session_id in session_ids[: max(queries // 5, 1)]:
            detail = client.get(f"/api/v1/sessions/{session_id}").json()
            trace_ids += [t["trace_id"] for t in detail["traces"]]
        return (
            ["/api/v1/sessions?limit=50&window=all"] * queries,
            [f"/api/v1/sessions/{s}" for s in session_ids],
            [f"/api/v1/traces/{t}" for t in trace_ids[:queries]],
        )


class PhoenixServer(Server):
    name = "Phoenix"

    def __init__(self, tmp: Path, python: Path, ui_queries: dict[str, str]) -> None:
        super().__init__(tmp)
        self.python = python
        self.ui_queries = ui_queries

    def data_dir(self) -> Path:
        return self.tmp / "phoenix"

    def start(self) -> None:
        self.data_dir().mkdir()
        port, grpc_port = free_port(), free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.tmp),
            "PHOENIX_WORKING_DIR": str(self.data_dir()),  # SQLite: phoenix.db in here
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(port),
            "PHOENIX_GRPC_PORT": str(grpc_port),
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
            "PHOENIX_ENABLE_AUTH": "false",
            "PHOENIX_ENABLE_PROMETHEUS": "false",
        }
        log = self.tmp / "server.log"
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [str(self.python), "-c", _PHOENIX_LAUNCHER],
                env=env,
                cwd=self.tmp,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.base_url = f"http://127.0.0.1:{port}"
        wait_healthy(self.process, self.base_url + "/healthz", 240, log)
        # The default project is made at start-up; its GraphQL id is needed for counts.
        self.project_gid = client_json(self.base_url, "/v1/projects")["data"][0]["id"]

    def span_count(self, client: httpx.Client) -> int:
        query = "query($id: ID!) { node(id: $id) { ... on Project { recordCount traceCount } } }"
        response = client.post(
            "/graphql", json={"query": query, "variables": {"id": self.project_gid}}
        )
        node = response.json()["data"]["node"]
        return node["recordCount"]

    def visible_spans(self, client: httpx.Client) -> int | None:
        return self.span_count(client)

    def wait_durable(
        self, client: httpx.Client, last_session: str, total: int, deadline: float
    ) -> bool:
        # Phoenix answers 200 once the spans are queued; they are written later. Poll
        # the project's span count (GraphQL Project.recordCount) until all are in.
        while time.monotonic() < deadline:
            if self.span_count(client) >= total:
                return True
            # Each poll takes Phoenix's event loop from its writer for a while: not often.
            time.sleep(0.25)
        return False

    def verify(self, client: httpx.Client, sessions: int, total: int) -> str:
        seen, traces, cursor = 0, 0, None
        while True:
            params: dict[str, str | int] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/v1/projects/default/sessions", params=params).json()
            seen += len(page["data"])
            traces += sum(len(s["traces"]) for s in page["data"])
            cursor = page["next_cursor"]
            if not cursor:
                break
        spans = self.span_count(client)
        expected_traces = total // workload.SPANS_PER_TRACE
        if (seen, traces, spans) != (sessions, expected_traces, total):
            return f"DATA MISMATCH: {seen} sessions, {traces} traces, {spans} spans"
        return ""

    def query_paths(
        self, client: httpx.Client, session_ids: list[str], queries: int
    ) -> tuple[list[str], list[str], list[str]]:
        trace_ids: list[str] = []
        for session_id in session_ids[: max(queries // 5, 1)]:
            detail = client.get(f"/v1/sessions/{session_id}").json()
            trace_ids += [t["trace_id"] for t in detail["data"]["traces"]]
        return (
            ["/v1/projects/default/sessions?limit=50&order=desc"] * queries,
            [f"/v1/sessions/{s}" for s in session_ids],
            [f"/v1/projects/default/spans?trace_id={t}&limit=100" for t in trace_ids[:queries]],
        )

    def ui_latencies(
        self, client: httpx.Client, session_ids: list[str], queries: int, result: RunResult
    ) -> None:
        # The Sessions tab, a session page and a trace page of Phoenix's web UI, with the
        # query texts of the installed version's own UI bundle (see phoenix_ui_queries).
        q = self.ui_queries
        if not all(name in q for name in _UI_QUERIES):
            return
        everything = {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}
        session_gids: list[str] = []
        trace_ids: list[str] = []
        for session_id in session_ids:
            data = client.get(f"/v1/sessions/{session_id}").json()["data"]
            session_gids.append(data["id"])
            if len(trace_ids) < queries:
                trace_ids += [t["trace_id"] for t in data["traces"]]

        def graphql(*operations: tuple[str, dict]) -> Callable[[], None]:
            def call() -> None:
                for name, variables in operations:
                    response = client.post(
                        "/graphql",
                        json={"query": q[name], "variables": variables, "operationName": name},
                    )
                    body = response.json()
                    if response.status_code != 200 or body.get("errors"):
                        raise RuntimeError(f"{name}: {response.status_code} {str(body)[:200]}")

            return call

        result.ui_list_ms = timed(
            [
                graphql(
                    (
                        "ProjectPageQueriesSessionsQuery",
                        {
                            "id": self.project_gid,
                            "timeRange": everything,
                            "sessionFilterCondition": None,
                        },
                    )
                )
            ]
            * queries
        )
        result.ui_detail_ms = timed(
            [
                graphql(
                    ("SessionDetailsQuery", {"id": gid}),
                    ("SessionDetailsTracesViewQuery", {"id": gid, "first": 50}),
                )
                for gid in session_gids
            ]
        )
        result.ui_trace_ms = timed(
            [
                graphql(
                    (
                        "TraceDetailsQuery",
                        {
                            "traceId": t,
                            "id": self.project_gid,
                        },
                    )
                )
                for t in trace_ids[:queries]
            ]
        )


def timed(calls: list[Callable[[], None]]) -> tuple[float, float]:
    times = []
    for call in calls:
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return p50_p95(times)


_UI_QUERIES = (
    "ProjectPageQueriesSessionsQuery",
    "SessionDetailsQuery",
    "SessionDetailsTracesViewQuery",
    "TraceDetailsQuery",
)


def phoenix_ui_queries(python: Path) -> dict[str, str]:
    """The GraphQL texts Phoenix's web UI sends, read from the installed UI bundle."""
    where = subprocess.run(
        [
            str(python),
            "-c",
            (
                "import phoenix, pathlib; print(pathlib.Path(phoenix.__file__)"
                ".parent / 'server' / 'static' / 'assets')"
            ),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    found: dict[str, str] = {}
    for bundle in Path(where).glob("*.js"):
        text = bundle.read_text(errors="replace")
        for name in _UI_QUERIES:
            pattern = "name:`" + re.escape(name) + "`,operationKind:`query`,text:`([^`]*)`"
            match = re.search(pattern, text)
            if match:
                found[name] = match.group(1)
    return found


def client_json(base_url: str, path: str) -> dict:
    response = httpx.get(base_url + path, timeout=30)
    response.raise_for_status()
    return response.json()


def run_server(
    server: Server, bodies: Iterable[workload.Batch], last_session: str, total: int, args
) -> RunResult:
    result = RunResult()
    sessions = total // (workload.SPANS_PER_TRACE * workload.TRACES_PER_SESSION)
    stored: int | None = None  # spans in the store, for disk per span
    try:
        server.start()
        assert server.process is not None
        wait_settled(server.process.pid)
        result.empty_store_bytes = dir_bytes(server.data_dir())
        with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=60) as client:
            deadline = time.monotonic() + args.timeout
            sent = send_all(server.base_url, server.headers, bodies, args.senders, deadline)
            started = sent.started
            result.answers_429, result.answers_503 = sent.answers_429, sent.answers_503
            if sent.failures or not server.wait_durable(client, last_session, total, deadline):
                elapsed = time.perf_counter() - started
                visible = server.visible_spans(client)
                result.note = (
                    sent.failures[0]
                    if sent.failures
                    else f"not all spans queryable within --timeout {args.timeout:.0f} s"
                )
                if visible is not None:
                    result.note += (
                        f"; {visible:,} of {total:,} spans queryable after "
                        f"{elapsed:.0f} s = {visible / elapsed:,.0f} spans/s"
                    )
                result.rss_mb = tree_peak_rss_mb(server.process.pid)
                return result
            result.accepted = total / sent.elapsed
            result.durable = total / (time.perf_counter() - started)
            stored = total

            result.note = server.verify(client, sessions, total)  # untimed
            rng = random.Random(3)
            session_ids = [f"bench-{rng.randrange(sessions):07d}" for _ in range(args.queries)]
            lists, details, traces = server.query_paths(client, session_ids, args.queries)
            result.list_ms = latencies(client, lists)
            result.detail_ms = latencies(client, details)
            result.trace_ms = latencies(client, traces)
            server.ui_latencies(client, session_ids, args.queries, result)
            result.rss_mb = tree_peak_rss_mb(server.process.pid)
    except Exception as error:  # noqa: BLE001 - a benchmark reports, it does not fail
        result.note = f"error: {error!r}"[:300]
    finally:
        if server.process is not None:
            stop(server.process)
            if server.process.returncode is not None and stored:
                # After a stop, so the write-ahead log is folded in where the server does so.
                result.disk_per_span = dir_bytes(server.data_dir()) / stored
    return result


# --------------------------------------------------------------------------- phoenix env


def phoenix_python(venvs_dir: Path, version: str | None) -> Path:
    venv = venvs_dir / "phoenix"
    python = venv / "bin" / "python"
    probe = "import importlib.metadata as m; print(m.version('arize-phoenix'))"
    if python.exists():
        found = subprocess.run(
            [str(python), "-c", probe], capture_output=True, text=True, check=False
        )
        if found.returncode == 0 and (version is None or found.stdout.strip() == version):
            return python
    print(f"installing arize-phoenix into {venv} (needs PyPI, once) ...", flush=True)
    venvs_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    spec = f"arize-phoenix=={version}" if version else "arize-phoenix"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", spec],
        check=True,
    )
    return python


# --------------------------------------------------------------------------- report


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if len(present) == len(values) and present else None


def fmt_num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=10_000, help="a multiple of 50")
    parser.add_argument("--repeat", type=int, default=3, help="runs per server")
    parser.add_argument("--batch", type=int, default=512, help="spans per export")
    parser.add_argument("--senders", type=int, default=4, help="concurrent exporters")
    parser.add_argument("--queries", type=int, default=200, help="requests per latency figure")
    parser.add_argument("--workers", type=int, default=2, help="Threadline server processes")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds a server gets to ingest everything (default: 120 + 1 s per 20 spans)",
    )
    parser.add_argument(
        "--venvs-dir",
        type=Path,
        default=REPO / ".bench-venvs",
        help="where Phoenix's virtual environment lives",
    )
    parser.add_argument(
        "--phoenix-version",
        default=None,
        help="arize-phoenix version to install (default: latest, or whatever is installed)",
    )
    parser.add_argument(
        "--scale",
        default="",
        help="comma-separated sizes (e.g. 100000,1000000,5000000) for "
        "Threadline's scale curve, run after the side-by-side runs",
    )
    parser.add_argument(
        "--skip-phoenix", action="store_true", help="only the scale curve and the SDK overhead"
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.scale.split(",") if size.strip()]
    if args.spans % 50 or any(size % 50 for size in sizes):
        parser.error("sizes must be multiples of 50")
    if args.timeout is None:
        args.timeout = 120 + args.spans / 20

    # Ctrl-C and SIGTERM unwind through the `finally` that stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    print(
        f"machine: {os.cpu_count()} CPUs, {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, load average at start {loadavg()}"
    )
    if not args.skip_phoenix:
        side_by_side(args)
    if sizes:
        scale_curve(args, sizes)
    sdk_overhead()


def scale_curve(args: argparse.Namespace, sizes: list[int]) -> None:
    """Threadline alone at growing sizes: how ingest and query costs grow with data."""
    print()
    print(
        f"Scale curve: Threadline (--workers {args.workers}), one run per size, "
        "the workload streamed from a file on disk"
    )
    print()
    print(
        "| spans | durable ingest (spans/s) | sessions list p50 / p95 (ms) | session detail "
        "p50 / p95 (ms) | trace detail p50 / p95 (ms) | peak RSS (MB) | disk (bytes/span) |"
    )
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="compare-scale-") as tmp:
            started = time.perf_counter()
            spool = Spool(Path(tmp) / "workload.bin", size, args.batch, "openinference")
            made = time.perf_counter() - started
            run_args = argparse.Namespace(**{**vars(args), "timeout": 120 + size / 20})
            r = run_server(
                ThreadlineServer(Path(tmp), args.workers), spool, spool.last_session, size, run_args
            )

        def ms(pair: tuple[float, float] | None) -> str:
            return "n/a" if pair is None else f"{pair[0]:.1f} / {pair[1]:.1f}"

        print(
            f"| {size:,} | {fmt_num(r.durable)} | {ms(r.list_ms)} | {ms(r.detail_ms)} | "
            f"{ms(r.trace_ms)} | {fmt_num(r.rss_mb)} | {fmt_num(r.disk_per_span)} |"
            + (f" {r.note}" if r.note else ""),
            flush=True,
        )
        print(
            f"  ({spool.exports:,} exports, {spool.wire_bytes / size:.0f} bytes of protobuf "
            f"per span, generated in {made:.0f} s before the run; load {loadavg()})",
            flush=True,
        )


def sdk_overhead() -> None:
    """The SDK's cost per span over bare OpenTelemetry, in a process of its own (it sets
    the global tracer provider)."""
    print()
    print("SDK overhead (bench/sdk_overhead.py):", flush=True)
    subprocess.run([sys.executable, str(BENCH / "sdk_overhead.py")], check=False)


def side_by_side(args: argparse.Namespace) -> None:
    python = phoenix_python(args.venvs_dir.absolute(), args.phoenix_version)
    phoenix_version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('arize-phoenix'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    from importlib.metadata import version as installed_version

    print(
        f"Threadline {installed_version('threadline')} (--workers {args.workers}), "
        f"Arize Phoenix {phoenix_version} (default settings, SQLite)"
    )
    print(f"generating {args.spans} spans (openinference flavour) ...", flush=True)
    bodies = list(workload.batches(args.spans, args.batch, flavour="openinference"))
    wire = sum(len(b.body) for b in bodies)
    print(
        f"{len(bodies)} exports of {args.batch} spans, {wire / args.spans:.0f} bytes of "
        f"protobuf per span, {args.senders} concurrent senders, {args.repeat} run(s)",
        flush=True,
    )
    # The raw ceiling's exports, made ready once (sqlite_ceiling.py), kept for the runs.
    ceiling_dir = tempfile.TemporaryDirectory(prefix="compare-raw-")
    ready = sqlite_ceiling.make_ready(bodies, Path(ceiling_dir.name))
    ui_queries = phoenix_ui_queries(python)
    missing = [name for name in _UI_QUERIES if name not in ui_queries]
    if missing:
        print(f"Phoenix UI queries not found in its bundle, UI figures skipped: {missing}")

    results: dict[str, list[RunResult]] = {"Threadline": [], "Phoenix": []}
    raw: list[float] = []
    makers: dict[str, Callable[[Path], Server]] = {
        "Threadline": lambda tmp: ThreadlineServer(tmp, args.workers),
        "Phoenix": lambda tmp: PhoenixServer(tmp, python, ui_queries),
    }
    for run in range(args.repeat):
        # Alternate the order, so neither server always runs on a warmer machine.
        order = ["Threadline", "Phoenix"] if run % 2 == 0 else ["Phoenix", "Threadline"]
        for name in order:
            with tempfile.TemporaryDirectory(prefix=f"compare-{name.lower()}-") as tmp:
                r = run_server(
                    makers[name](Path(tmp)), bodies, bodies[-1].session_ids[-1], args.spans, args
                )
            results[name].append(r)
            print(
                f"run {run + 1} {name:10s} durable {fmt_num(r.durable)} spans/s, accepted "
                f"{fmt_num(r.accepted)} spans/s, 429/503: {r.answers_429}/{r.answers_503}, "
                f"RSS {fmt_num(r.rss_mb)} MB, disk {fmt_num(r.disk_per_span)} B/span"
                + (f"  [{r.note}]" if r.note else "")
                + f"  (load {loadavg()})",
                flush=True,
            )
        raw.append(sqlite_ceiling.raw_rate(ready, 1).spans_per_s)
        print(f"run {run + 1} raw SQLite  {raw[-1]:,.0f} spans/s", flush=True)

    ceiling_dir.cleanup()
    t, p = results["Threadline"], results["Phoenix"]

    def pair(get: Callable[[RunResult], float | None]) -> tuple[float | None, float | None]:
        return median([get(r) for r in t]), median([get(r) for r in p])

    def nth(
        get: Callable[[RunResult], tuple[float, float] | None], at: int
    ) -> Callable[[RunResult], float | None]:
        """The ``at``-th figure of the (p50, p95) pair ``get`` reads, None where it is."""

        def read(r: RunResult) -> float | None:
            both = get(r)
            return None if both is None else both[at]

        return read

    table: list[tuple[str, float | None, float | None, int]] = []
    table.append(("durable ingest (spans/s)", *pair(lambda r: r.durable), 0))
    table.append(("accepted (spans/s)", *pair(lambda r: r.accepted), 0))
    table.append(
        (
            "429 answers (total, all runs)",
            sum(r.answers_429 for r in t),
            sum(r.answers_429 for r in p),
            0,
        )
    )
    table.append(
        (
            "503 answers (total, all runs)",
            sum(r.answers_503 for r in t),
            sum(r.answers_503 for r in p),
            0,
        )
    )
    for label, get in (
        ("sessions list, 50", lambda r: r.list_ms),
        ("session detail (5 traces)", lambda r: r.detail_ms),
        ("trace detail (10 spans)", lambda r: r.trace_ms),
    ):
        table.append((f"{label} p50 (ms)", *pair(nth(get, 0)), 1))
        table.append((f"{label} p95 (ms)", *pair(nth(get, 1)), 1))
    table.append(("peak RSS, process tree (MB)", *pair(lambda r: r.rss_mb), 0))
    table.append(("disk (bytes/span)", *pair(lambda r: r.disk_per_span), 0))

    print()
    print(f"{args.spans:,} spans, median of {args.repeat} run(s); load average now {loadavg()}")
    print()
    print(
        "Ratio Threadline / Phoenix: above 1 is better for rates, below 1 is better for "
        "latency, memory and disk."
    )
    print()
    print("| figure | Threadline | Phoenix | Threadline / Phoenix |")
    print("|---|---|---|---|")
    for label, a, b, digits in table:
        print(f"| {label} | {fmt_num(a, digits)} | {fmt_num(b, digits)} | {fmt_ratio(a, b)} |")
    print()
    print(
        "Phoenix's web UI reads through GraphQL; the same three views with the queries its "
        "UI sends (ratio against Threadline's API figure above):"
    )
    print()
    print(
        "| view (Phoenix UI query) | Phoenix p50 / p95 (ms) | Threadline API p50 / p95 (ms) "
        "| Threadline / Phoenix, p50 |"
    )
    print("|---|---|---|---|")
    for label, ui, api in (
        (
            "Sessions tab, first 30 (ProjectPageQueriesSessionsQuery)",
            lambda r: r.ui_list_ms,
            lambda r: r.list_ms,
        ),
        (
            "session page (SessionDetailsQuery + SessionDetailsTracesViewQuery)",
            lambda r: r.ui_detail_ms,
            lambda r: r.detail_ms,
        ),
        ("trace page (TraceDetailsQuery)", lambda r: r.ui_trace_ms, lambda r: r.trace_ms),
    ):
        p50 = median([None if ui(r) is None else ui(r)[0] for r in p])
        p95 = median([None if ui(r) is None else ui(r)[1] for r in p])
        t50 = median([None if api(r) is None else api(r)[0] for r in t])
        t95 = median([None if api(r) is None else api(r)[1] for r in t])
        print(
            f"| {label} | {fmt_num(p50, 1)} / {fmt_num(p95, 1)} | {fmt_num(t50, 1)} / "
            f"{fmt_num(t95, 1)} | {fmt_ratio(t50, p50)} |"
        )
    raw_median = statistics.median(raw)
    t_durable = table[0][1]
    print()
    print(
        f"raw SQLite ceiling (sqlite_ceiling.py: the rows as the workers make them into "
        f"the store's spans table, 512 a transaction): {raw_median:,.0f} spans/s (runs: "
        f"{', '.join(f'{v:,.0f}' for v in raw)})"
    )
    print(
        f"Threadline durable ingest as a fraction of it: "
        f"{'n/a' if t_durable is None else f'{t_durable / raw_median:.0%}'}"
    )
    if t[0].empty_store_bytes is not None and p[0].empty_store_bytes is not None:
        print(
            f"empty store at start (included in disk): Threadline "
            f"{t[0].empty_store_bytes / 1e6:.1f} MB, "
            f"Phoenix {p[0].empty_store_bytes / 1e6:.1f} MB"
        )
    for name, runs in results.items():
        for i, r in enumerate(runs):
            if r.note:
                print(f"note: {name} run {i + 1}: {r.note}")
    print(
        "Phoenix API used: OTLP POST /v1/traces; durable = GraphQL Project.recordCount "
        "reaches the number sent; sessions list GET /v1/projects/default/sessions?limit=50"
        "&order=desc; session detail GET /v1/sessions/{session_id}; trace detail GET "
        "/v1/projects/default/spans?trace_id=...&limit=100"
    )


if __name__ == "__main__":
    main()
