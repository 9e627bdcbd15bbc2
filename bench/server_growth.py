"""Does the real server's durable ingest slow down, or its memory grow, as the store grows?

    python bench/server_growth.py --spans 5000000 --window 100000 --max-minutes 40

Starts ``threadline serve`` on a fresh data directory (as ``server.py`` does) and sends
the workload of ``workload.py`` from 4 senders, without end in sight: the bodies are
made while the run goes (5M spans would be 19 GB made beforehand) by a process of their
own, which takes its share of the same cores (~90 µs of CPU a span), in every window
alike. For each window of spans it prints the rate at which exports were answered, the
server's CPU per span (all of its processes), its resident memory now (all of its
processes) and the size of the data directory, so that the rate at 5M spans can be read
against the rate of the first windows of the same run. At the end: the peak RSS, and the
sessions list and session detail latency on the full store.

Where the CPU goes, per window: the server process's three busiest threads (the writer
first in practice, then the WAL checkpointer and the event loop), in µs a span, and the
workers' sum; and the server process's file reads and writes a span (``/proc/PID/io``:
``pread`` calls are SQLite page-cache misses, the bytes written are the WAL's and the
checkpoints'), so that a rise in CPU can be put down to the B-trees outgrowing the cache.

Why a window is slow, per window: the largest size the WAL reached (sampled every 0.2
s) and how many times it was started over (its header's checkpoint counter: each
``TRUNCATE`` or ``RESTART`` checkpoint that emptied it); the search index's segments by
level (FTS5's structure record, ``search_text_data`` row 10: ``segments[*]`` a level,
``*`` where a merge into the next level is under way) and its pages in all; and the
file traffic of the server process's two threads that do most of it, named by
``py-spy dump`` when it is at hand (the writer's reads are its page-cache misses, the
checkpointer's writes the pages it copies into the database file).

``--data-dir`` keeps the store (it must be empty or absent) for later looks at it (page
counts per index with ``dbstat``) or later runs; by default it is a temporary directory.

A benchmark, not a test: it prints numbers. ``--max-minutes`` bounds the run; it stops
where it is then and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload
from server import (
    descendants,
    latencies,
    peak_rss_mb,
    send_all,
    start_server,
    thread_cpu_seconds,
    tree_cpu_seconds,
    wait_settled,
)


def _make_bodies(spans: int, batch: int, out: multiprocessing.Queue[bytes | None]) -> None:
    for each in workload.batches(spans, batch):
        out.put(each.body)
    out.put(None)


def _rss_mb(pid: int) -> float:
    """Resident memory now of a process and its descendants, in MB."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def _io_counters(pid: int) -> dict[str, int]:
    """A process's read/write calls and bytes so far (``/proc/PID/io``); empty if gone."""
    try:
        lines = Path(f"/proc/{pid}/io").read_text().splitlines()
    except OSError:
        return {}
    return {name: int(value) for name, value in (line.split(": ") for line in lines)}


def _thread_io(pid: int) -> dict[int, tuple[int, int, int]]:
    """Each thread's read calls, bytes read and bytes written so far, by thread id."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            lines = (task / "io").read_text().splitlines()
        except OSError:
            continue
        io = {name: int(value) for name, value in (line.split(": ") for line in lines)}
        found[int(task.name)] = (io["syscr"], io["rchar"], io["wchar"])
    return found


def _thread_names(pid: int) -> dict[int, str]:
    """The Python names of a process's threads by thread id (``py-spy dump``), or none."""
    spy = shutil.which("py-spy") or "/work/tools/bin/py-spy"
    try:
        out = subprocess.run(
            [spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    names = {}
    for line in out.splitlines():
        # Thread 10398 (idle): "threadline-writer"
        if line.startswith("Thread ") and '"' in line:
            tid = line.split()[1]
            if tid.isdigit():
                names[int(tid)] = line.split('"')[1].removeprefix("threadline-")
    return names


def _busiest_io(
    before: dict[int, tuple[int, int, int]],
    after: dict[int, tuple[int, int, int]],
    names: dict[int, str],
    spans: int,
) -> str:
    """The two threads that read and wrote the most: name, read calls, KB read and KB
    written, a span."""
    spent = {
        tid: tuple(b - a for a, b in zip(before.get(tid, (0, 0, 0)), now, strict=True))
        for tid, now in after.items()
    }
    top = sorted(spent.items(), key=lambda item: item[1][1] + item[1][2], reverse=True)[:2]
    return "  ".join(
        f"{names.get(tid, tid)} {calls / spans:.1f}/{read / spans / 1024:.1f}/"
        f"{written / spans / 1024:.1f}"
        for tid, (calls, read, written) in top
    )


def _wal_header(path: Path) -> tuple[int, int]:
    """The WAL's size and its checkpoint counter (bumped each time it starts over); 0, -1
    when it is empty."""
    try:
        with path.open("rb") as wal:
            header = wal.read(16)
            size = path.stat().st_size
    except OSError:
        return 0, -1
    return size, int.from_bytes(header[12:16], "big") if len(header) == 16 else -1


def _varint(data: bytes, i: int) -> tuple[int, int]:
    """SQLite's varint (as FTS5 writes them) at ``data[i]``: its value, the next offset."""
    value = 0
    for n in range(9):
        byte = data[i + n]
        if n == 8:
            return (value << 8) | byte, i + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, i + n + 1
    raise AssertionError("unreachable")


def _fts5_levels(conn: sqlite3.Connection) -> str:
    """The search index's segments by level and its pages in all, from FTS5's structure
    record (fts5_index.c, ``fts5StructureDecode``; checked against SQLite 3.51's records,
    whose every byte it reads): ``3/8*/1 (41,210 p)``, ``*`` where a level's segments
    are being merged into the next (the pages of a merge's inputs not yet taken are
    counted)."""
    row = conn.execute("SELECT block FROM search_text_data WHERE id = 10").fetchone()
    if row is None:
        return "-"
    data: bytes = row[0]
    i, v2 = 4, data[4:8] == b"\xff\x00\x00\x01"
    i += 4 if v2 else 0
    levels, i = _varint(data, i)
    _, i = _varint(data, i)  # segments in all
    _, i = _varint(data, i)  # write counter
    shown, pages = [], 0
    for _ in range(levels):
        merging, i = _varint(data, i)
        segments, i = _varint(data, i)
        for _ in range(segments):
            _, i = _varint(data, i)  # segment id
            first, i = _varint(data, i)
            last, i = _varint(data, i)
            pages += last - first + 1
            if v2:
                for _ in range(5):  # origins, tombstone pages and entries, entries
                    _, i = _varint(data, i)
        shown.append(f"{segments}{'*' if merging else ''}")
    return f"{'/'.join(shown)} ({pages:,} p)"


def _where_cpu_went(
    server_pid: int,
    before: dict[tuple[int, int], float],
    after: dict[tuple[int, int], float],
    spans: int,
) -> str:
    """The server process's 3 busiest threads and the workers' sum, µs a span."""
    server, workers = [], 0.0
    for (pid, tid), seconds in after.items():
        spent = (seconds - before.get((pid, tid), 0.0)) / spans * 1e6
        if pid == server_pid:
            server.append(spent)
        else:
            workers += spent
    top = "/".join(f"{us:.0f}" for us in sorted(server, reverse=True)[:3])
    return f"{top:>12}{workers:>9.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=5_000_000)
    parser.add_argument("--window", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=512, help="spans per export")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-minutes", type=float, default=60.0)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument(
        "--data-dir", type=Path, help="keep the store here (empty or absent); default: temporary"
    )
    args = parser.parse_args()
    if args.data_dir is not None and args.data_dir.exists() and any(args.data_dir.iterdir()):
        raise SystemExit(f"{args.data_dir} is not empty")

    context = multiprocessing.get_context("spawn")
    made: multiprocessing.Queue[bytes | None] = context.Queue(maxsize=64)
    maker = context.Process(target=_make_bodies, args=(args.spans, args.batch, made), daemon=True)
    maker.start()
    with contextlib.ExitStack() as stack:
        if args.data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tl-growth-")))
        else:
            data_dir = args.data_dir
            data_dir.mkdir(parents=True, exist_ok=True)
        process, base_url, key = start_server(data_dir, args.workers)
        wait_settled(process.pid)
        names = _thread_names(process.pid)
        index = sqlite3.connect(
            f"file:{data_dir / 'threadline.db'}?mode=ro", uri=True, check_same_thread=False
        )
        stack.callback(index.close)
        wal_path = data_dir / "threadline.db-wal"
        stop_at = time.monotonic() + args.max_minutes * 60
        sent = 0
        lock = threading.Lock()
        print(
            "    spans   window spans/s   server CPU µs/span   RSS MB now   data dir MB"
            "   top 3 threads  workers   preads  KB read  KB written  (a span)"
            "   WAL max MB  restarts   index levels (pages)   busiest file threads"
            " (read calls/KB read/KB written a span)",
            flush=True,
        )

        def bodies() -> Iterator[workload.Batch]:
            nonlocal sent
            while time.monotonic() < stop_at:
                body = made.get()
                if body is None:
                    return
                with lock:
                    sent += args.batch
                yield workload.Batch(body, args.batch, ())

        finished = threading.Event()

        def report() -> None:
            mark_spans, mark_time = 0, time.perf_counter()
            mark_cpu = tree_cpu_seconds(process.pid)
            mark_threads = thread_cpu_seconds([process.pid, *descendants(process.pid)])
            mark_io = _io_counters(process.pid)
            mark_thread_io = _thread_io(process.pid)
            wal_max, mark_counter = _wal_header(wal_path)
            restarts = 0
            while not finished.wait(0.2):
                with lock:
                    now_sent = sent
                wal_size, counter = _wal_header(wal_path)
                wal_max = max(wal_max, wal_size)
                if counter >= 0:
                    if mark_counter >= 0:
                        restarts += counter - mark_counter
                    mark_counter = counter
                if now_sent - mark_spans < args.window:
                    continue
                now, cpu = time.perf_counter(), tree_cpu_seconds(process.pid)
                spans = now_sent - mark_spans
                threads = thread_cpu_seconds([process.pid, *descendants(process.pid)])
                io = _io_counters(process.pid)
                thread_io = _thread_io(process.pid)
                try:
                    levels = _fts5_levels(index)
                except sqlite3.Error as error:  # busy at the moment: said, not fatal
                    levels = f"({error})"
                size = sum(f.stat().st_size for f in data_dir.iterdir() if f.is_file())
                print(
                    f"{now_sent:>9,}{spans / (now - mark_time):>17,.0f}"
                    f"{(cpu - mark_cpu) / spans * 1e6:>21.0f}"
                    f"{_rss_mb(process.pid):>13.0f}{size / 1e6:>14,.0f}"
                    f"    {_where_cpu_went(process.pid, mark_threads, threads, spans)}"
                    f"{(io.get('syscr', 0) - mark_io.get('syscr', 0)) / spans:>9.1f}"
                    f"{(io.get('rchar', 0) - mark_io.get('rchar', 0)) / spans / 1024:>9.1f}"
                    f"{(io.get('wchar', 0) - mark_io.get('wchar', 0)) / spans / 1024:>12.1f}"
                    f"{wal_max / 1e6:>13.0f}{restarts:>10}   {levels:>22}   "
                    f"{_busiest_io(mark_thread_io, thread_io, names, spans)}",
                    flush=True,
                )
                mark_spans, mark_time, mark_cpu = now_sent, now, cpu
                mark_threads, mark_io, mark_thread_io = threads, io, thread_io
                wal_max, restarts = wal_size, 0

        reporter = threading.Thread(target=report, daemon=True)
        reporter.start()
        try:
            result = send_all(base_url, {"Authorization": f"Bearer {key}"}, bodies(), args.senders)
            finished.set()
            reporter.join()
            if result.failures:
                print("failed:", result.failures[0])
            if time.monotonic() >= stop_at:
                print(f"stopped after {args.max_minutes:g} minutes, at {sent:,} spans")
            print(f"overall: {sent / result.elapsed:,.0f} spans/s over {result.elapsed:.0f} s")
            each_rss = [peak_rss_mb(process.pid)] + [
                peak_rss_mb(pid) for pid in descendants(process.pid)
            ]
            print(
                f"server peak RSS: {sum(each_rss):.0f} MB (the server process, then each it "
                f"started: {', '.join(f'{mb:.0f}' for mb in each_rss)})"
            )
            with httpx.Client(
                base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
            ) as client:
                listed = "/api/v1/sessions?limit=50&window=all"
                list_p = latencies(client, [listed] * args.queries)
                sessions = client.get(listed).json()["items"]
                detail_p = latencies(
                    client,
                    [f"/api/v1/sessions/{s['session_id']}" for s in sessions][: args.queries],
                )
            print(f"sessions list p50/p95: {list_p[0]:.1f} / {list_p[1]:.1f} ms")
            print(f"session detail p50/p95: {detail_p[0]:.1f} / {detail_p[1]:.1f} ms")
        finally:
            finished.set()
            process.terminate()
            process.wait()
            maker.kill()


if __name__ == "__main__":
    main()
