"""Bulk export: how fast, and does the server's memory stay flat?

    python bench/export.py --spans 1000000

Fills a fresh SQLite store straight through ``Store.write_spans`` with sessions of 5
traces of 10 spans (inputs and outputs of a few hundred bytes), starts ``threadline
serve`` on it, and streams over HTTP, one after the other:

- ``GET /api/v1/export/sessions?format=jsonl&include=spans``: every session with every
  trace and span (the export that can be loaded elsewhere);
- ``GET /api/v1/export/sessions?format=csv`` and ``/api/v1/export/traces?format=csv``.

For each: rows, bytes, seconds, spans (or rows) per second, the server's RSS before
and at its peak during the export (sampled every 20 ms from /proc), and the CPU time
the server and this client used meanwhile (on a shared machine the server's CPU time a
span drifts less than the rate).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fillers
from fillers import MS, T0
from server import start_server

from threadline.server.model import SpanRecord

TRACES_PER_SESSION = 5
SPANS_PER_TRACE = 10


def fill(path: Path, total: int, batch: int = 5000) -> int:
    """Write ``total`` spans into project ``default``; return the number of sessions."""
    sessions = total // (TRACES_PER_SESSION * SPANS_PER_TRACE)
    fillers.write_spans(path, _spans(sessions), batch)
    return sessions


def _spans(sessions: int) -> Iterator[SpanRecord]:
    rng = random.Random(11)
    for s in range(sessions):
        for turn in range(TRACES_PER_SESSION):
            trace = fillers.trace_id(rng)
            start = T0 + s * 10**9 + turn * 60 * 10**9
            root = fillers.span_id(rng)
            for i in range(SPANS_PER_TRACE):
                yield SpanRecord(
                    trace_id=trace,
                    span_id=root if i == 0 else fillers.span_id(rng),
                    parent_span_id=None if i == 0 else root,
                    name="handle_turn" if i == 0 else f"step-{i}",
                    kind="INTERNAL",
                    start_ns=start + i * MS,
                    end_ns=start + (i + 5) * MS,
                    status="ok",
                    input=f'{{"message": "question {s}-{turn}-{i} ' + "x" * 200 + '"}',
                    output=f'{{"reply": "answer {s}-{turn}-{i} ' + "y" * 200 + '"}',
                    input_tokens=20,
                    output_tokens=10,
                    total_tokens=30,
                    session_id=f"session-{s:07d}" if i == 0 else None,
                    user_id=f"user-{s % 97}" if i == 0 else None,
                )


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used (on a shared machine, steadier than
    the wall clock)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class PeakRss:
    """The highest RSS of a process while the block runs, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = rss_mb(pid)
        self.peak = self.before
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, rss_mb(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.pid))


def stream(base_url: str, key: str, path: str, params: dict[str, str]) -> tuple[int, int]:
    """(lines, bytes) of a streamed export, over all time (the lists and their exports
    default to the last 7 days; the filled spans are older)."""
    params = {**params, "window": "all"}
    lines = size = 0
    with (
        httpx.Client(timeout=600) as client,
        client.stream(
            "GET", base_url + path, params=params, headers={"Authorization": f"Bearer {key}"}
        ) as response,
    ):
        response.raise_for_status()
        for chunk in response.iter_bytes():
            lines += chunk.count(b"\n")
            size += len(chunk)
    return lines, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="Keep the filled store here and reuse it on the next run (A/B pairs of "
        "server versions on the same data); default: a temporary folder.",
    )
    parser.add_argument("--only", help="Run only the exports whose label contains this.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="threadline-export-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        key_file = data_dir / "bench-key"
        sessions = args.spans // (TRACES_PER_SESSION * SPANS_PER_TRACE)
        if not key_file.exists():
            # The key first: it makes the store; then the spans, then the server on them.
            started = time.perf_counter()
            process, base_url, key = start_server(data_dir, workers=1)
            process.terminate()
            process.wait()
            sessions = fill(data_dir / "threadline.db", args.spans)
            key_file.write_text(key)
            print(
                f"filled {args.spans:,} spans, {sessions:,} sessions"
                f" in {time.perf_counter() - started:.0f} s"
            )
        key = key_file.read_text()
        spans = sessions * TRACES_PER_SESSION * SPANS_PER_TRACE
        process, base_url, _ = start_server(data_dir, workers=1)
        try:
            # Warm up (code paths, caches) on a small export before measuring.
            stream(base_url, key, "/api/v1/export/sessions", {"user_id": "user-1"})
            runs = [
                ("sessions JSONL + spans", "/api/v1/export/sessions", {"include": "spans"}, spans),
                ("sessions CSV", "/api/v1/export/sessions", {"format": "csv"}, sessions),
                (
                    "traces CSV",
                    "/api/v1/export/traces",
                    {"format": "csv"},
                    sessions * TRACES_PER_SESSION,
                ),
            ]
            for label, path, params, units in runs:
                if args.only and args.only not in label:
                    continue
                with PeakRss(process.pid) as rss:
                    began = time.perf_counter()
                    cpu = cpu_seconds(process.pid), time.process_time()
                    lines, size = stream(base_url, key, path, params)
                    seconds = time.perf_counter() - began
                    server_cpu = cpu_seconds(process.pid) - cpu[0]
                    client_cpu = time.process_time() - cpu[1]
                unit = "spans" if "spans" in label else "rows"
                print(
                    f"{label}: {lines:,} lines, {size / 1e6:,.0f} MB in {seconds:.1f} s ="
                    f" {units / seconds:,.0f} {unit}/s; server RSS {rss.before:.0f} MB before,"
                    f" {rss.peak:.0f} MB at peak (+{rss.peak - rss.before:.0f} MB); CPU"
                    f" {server_cpu:.1f} s server, {client_cpu:.1f} s client"
                    f" ({server_cpu * 1e6 / units:.1f} µs of server CPU per {unit[:-1]})"
                )
        finally:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
