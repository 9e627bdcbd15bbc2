"""Where the dashboard's upkeep costs a server's own process on real chats, thread by
thread: the writer, the WAL checkpointer and the rest, with the dashboard and without it,
in this process, on a copy of a kept base store.

    python bench/dashboard_threads.py --base <kept base directory> --spans 40000 \\
        --arms with,without,without,with

Each arm copies the base's ``threadline.db`` into a new directory (flushed to disk
before anything is timed, so the kernel is not still writing the copy back while the
arm runs), opens it as a server does (the arm without the dashboard loses its schema
there, ``no_dashboard.py``, and waits until the checkpointer has emptied the WAL), and
prepares ``corpus_otlp.py``'s real chats as an ingest worker does (decode, normalise,
the store's preparation), pickled as a worker's answer; the export's end is the end of
the base's 30 days (its ``.json``), as ``dashboard_server.py`` sends them. Then, timed:
the answers are loaded (as the server's event loop does) and written by one thread,
``--group`` exports a transaction (``write_span_batches``, as the server's writer's
group commit), while the store's checkpointer runs as in a server; after the last
write, the checkpointer is given until the WAL is empty, so the arm's whole checkpoint
work counts.

Printed per arm, a span: CPU µs of the writing thread (but for the loads), of the
checkpointer and of the loads; bytes written (``wchar`` of
``/proc/self/task/<tid>/io``) by the writer (its WAL frames; in frames of a 4 KiB page
and its 24-byte header) and by the checkpointer (its copies into the database file).
``--profile`` prints the writer's profile (the store's functions, by cumulative time)
instead of timing it fairly. A kept base is one of ``dashboard_server.py --keep-base``'s
(``bench/dashboard.py``'s backfilled sessions; its schema must be this tree's).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pickle
import pstats
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from threadline.server.ingest.decode import PROTOBUF, decode_request
from threadline.server.ingest.normalize import normalize_request
from threadline.server.ingest.writer_records import drop_what_rows_hold
from threadline.server.store.base import SpanBatch
from threadline.server.store.sqlite import SQLiteStore

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import corpus_otlp  # noqa: E402
import dashboard  # noqa: E402
import no_dashboard  # noqa: E402

FRAME_BYTES = 4096 + 24


def _task_io(tid: int) -> int:
    """Bytes a thread of this process has written so far (``wchar``)."""
    for line in Path(f"/proc/self/task/{tid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def _task_cpu(tid: int) -> float:
    """CPU seconds a thread of this process has used so far."""
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _checkpointer_tid() -> int:
    for thread in threading.enumerate():
        if thread.name == "threadline-checkpoint" and thread.native_id is not None:
            return thread.native_id
    raise SystemExit("no checkpointer thread")


def _wal_empty(path: Path, timeout: float = 60) -> None:
    """Until the checkpointer has truncated the WAL (it does once nothing is committed)."""
    deadline = time.monotonic() + timeout
    wal = Path(f"{path}-wal")
    while time.monotonic() < deadline:
        if not wal.exists() or wal.stat().st_size == 0:
            return
        time.sleep(0.05)
    raise SystemExit("the WAL was not emptied")


def one_arm(
    with_dashboard: bool, base: Path, spans: int, batch: int, group: int, profile: bool
) -> dict:
    end_ns = json.loads(base.with_suffix(".json").read_text())["end_ns"]
    exports = list(corpus_otlp.batches(spans, batch, start_ns=end_ns - 3600 * dashboard.S))
    restore = None if with_dashboard else no_dashboard.skip_upkeep()
    try:
        with tempfile.TemporaryDirectory(prefix="threadline-dashboard-threads-") as tmp:
            path = Path(tmp) / "threadline.db"
            shutil.copy(base / "threadline.db", path)
            with open(path, "rb+") as copied:
                os.fsync(copied.fileno())
            store = SQLiteStore(path)
            if not with_dashboard:
                no_dashboard.drop_schema(store)
            (project,) = [p.id for p in store.list_projects() if p.name == "default"]
            preparer = store.span_preparer()
            answers = []
            for body in exports:
                records = normalize_request(decode_request(body.body, PROTOBUF)).spans
                prepared = preparer(project, records)
                drop_what_rows_hold(records)
                answers.append(pickle.dumps((records, prepared), pickle.HIGHEST_PROTOCOL))
            _wal_empty(path)
            checkpointer = _checkpointer_tid()
            took: dict[str, float] = {}

            def write() -> None:
                tid = threading.get_native_id()
                cpu, io = _task_cpu(tid), _task_io(tid)
                loads = 0.0
                profiler = cProfile.Profile() if profile else None
                if profiler:
                    profiler.enable()
                for first in range(0, len(answers), group):
                    started = time.thread_time()
                    batches = [
                        SpanBatch(project, *pickle.loads(answer))
                        for answer in answers[first : first + group]
                    ]
                    loads += time.thread_time() - started
                    store.write_span_batches(batches)
                took["writer"] = _task_cpu(tid) - cpu - loads
                if profiler:
                    profiler.disable()
                    stats = pstats.Stats(profiler)
                    stats.sort_stats("cumulative").print_stats("store/sqlite", 45)
                took["loads"] = loads
                took["writer_bytes"] = _task_io(tid) - io

            cp_cpu, cp_io = _task_cpu(checkpointer), _task_io(checkpointer)
            started = time.perf_counter()
            thread = threading.Thread(target=write)
            thread.start()
            thread.join()
            took["elapsed"] = time.perf_counter() - started
            _wal_empty(path)
            took["checkpointer"] = _task_cpu(checkpointer) - cp_cpu
            took["checkpointer_bytes"] = _task_io(checkpointer) - cp_io
            store.close()
    finally:
        if restore is not None:
            restore()
    written = sum(b.spans for b in exports)
    return {"spans": written, **took}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="a kept base's directory")
    parser.add_argument("--spans", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=512, help="spans per export")
    parser.add_argument("--group", type=int, default=2, help="exports a transaction")
    parser.add_argument("--arms", default="with,without,without,with")
    parser.add_argument(
        "--profile", action="store_true", help="print the writer's profile (its CPU doubles)"
    )
    args = parser.parse_args()
    for arm in args.arms.split(","):
        r = one_arm(arm == "with", args.base, args.spans, args.batch, args.group, args.profile)
        n = r["spans"]
        print(
            f"{arm:7s} writer {r['writer'] / n * 1e6:6.1f} µs/span,"
            f" checkpointer {r['checkpointer'] / n * 1e6:5.1f}, loads {r['loads'] / n * 1e6:4.1f};"
            f" bytes a span: writer {r['writer_bytes'] / n:6.0f}"
            f" ({r['writer_bytes'] / FRAME_BYTES / n:.2f} frames),"
            f" checkpointer {r['checkpointer_bytes'] / n:6.0f};"
            f" {r['elapsed']:.1f} s; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
