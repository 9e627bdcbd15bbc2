"""Benchmark hooks, installed in every Python process started with this directory on
``PYTHONPATH`` (a server, its spawned ingest workers, ``threadline keys create``): those
that ``THREADLINE_BENCH_HOOKS`` names, comma-separated, in any combination. Never used
by the product.

- ``export_timeline``: each export's path through the server is timed and, in the server
  process, written as one JSON line to ``$THREADLINE_TIMELINE`` (read by
  ``bench/export_timeline.py``).
- ``without_search_index``: the SQLite store's search index gets no documents, so neither
  the workers' preparation nor the writer's transaction does any of its work (the
  "without" side of ``bench/search_server.py``).
- ``thread_names``: each thread started by ``threading`` gives the kernel its name (its
  first 15 bytes, ``/proc/<pid>/task/<tid>/comm``), so that a benchmark can tell a
  server's threads apart from outside (``server.py``'s ``threads_by_name``): the writer
  is ``threadline-writ``, the WAL checkpointer ``threadline-chec``.
- ``without_dashboard``: each SQLite store opened loses what the dashboard adds
  (``no_dashboard.drop_schema``, a no-op once done) and writes keep no aggregates
  (``no_dashboard.skip_upkeep``), exactly as ``bench/dashboard.py``'s store without the
  dashboard (the "without" side of ``bench/dashboard_server.py``).

For example, the timeline of a server without the search index::

    THREADLINE_BENCH_HOOKS=export_timeline,without_search_index \\
    THREADLINE_TIMELINE=/tmp/t.jsonl PYTHONPATH=bench/hooks:src \\
        python bench/server.py --spans 100000 --workers 2

``bench/search_server.py`` and ``bench/dashboard_server.py`` add their "without" hook to
the names they are given, so a timeline of their rounds takes the same two variables.
A name not listed here, or a hook that fails to install, stops the process: a run must
not measure the product unchanged while it believes it measures a hook.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

NAMES = "THREADLINE_BENCH_HOOKS"
T = TypeVar("T")


def _waited() -> float:
    """Seconds this thread has waited for a CPU while runnable (the kernel's run queue)."""
    with open("/proc/thread-self/schedstat") as stat:
        return int(stat.read().split()[1]) / 1e9


def export_timeline() -> None:
    """Times an export's stages: ``start`` its handler called (body not read yet),
    ``export`` body in hand, ``worker_in`` and ``worker_out`` its job in the worker process
    (``worker_cpu`` the worker thread's CPU meanwhile, ``worker_runq`` its time runnable
    but waiting for a core), ``prepared`` its answer back on the event loop, ``to_writer``
    given to the writer, ``commit_start`` and ``commit_end`` the store's write of the group
    that held it (``group`` exports; ``commit_cpu`` and ``commit_runq`` the writer's),
    ``committed`` back on the event loop, ``end`` the answer framed; all by
    ``time.monotonic``, one clock for every process of the machine."""
    from threadline.server.ingest import prepare
    from threadline.server.ingest.body import Body

    original_prepare = prepare.prepare_export

    # Wrapped, it keeps the original's name: the server sends the job to a worker by
    # that name, and the worker (started with these hooks too) runs its own wrapper.
    @functools.wraps(original_prepare)
    def prepare_export(
        job: prepare.Job, body: Body, kind: str, content_encoding: str | None
    ) -> prepare.Prepared | list[bytes]:
        started, cpu, waited = time.monotonic(), time.thread_time(), _waited()
        result = original_prepare(job, body, kind, content_encoding)
        if isinstance(result, prepare.Prepared):
            # An attribute of its own, pickled with the answer back to the server.
            result.timeline = (  # type: ignore[attr-defined]
                started,
                time.monotonic(),
                time.thread_time() - cpu,
                _waited() - waited,
            )
        return result

    prepare.prepare_export = prepare_export

    path = os.environ.get("THREADLINE_TIMELINE")
    # The rest in the server process only (its workers are spawned with
    # "--multiprocessing-fork").
    if not path or "serve" not in sys.orig_argv:
        return
    from fastapi import Request, Response
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    from threadline.server.ingest import otlp_http, pipeline, writer
    from threadline.server.model import Project
    from threadline.server.store.base import SpanBatch
    from threadline.server.store.sqlite import SQLiteStore
    from threadline.server.store.sqlite.span_writes import SpanWrites

    current: contextvars.ContextVar[dict[str, float]] = contextvars.ContextVar("timeline")
    by_spans: dict[int, dict[str, float]] = {}
    lock = threading.Lock()
    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life

    original_export = otlp_http._export

    async def export(request: Request, project: Project) -> Response:
        record = {"start": time.monotonic()}
        current.set(record)
        try:
            return await original_export(request, project)
        finally:
            record["end"] = time.monotonic()
            with lock:
                out.write(json.dumps(record) + "\n")

    otlp_http._export = export

    original_pipeline_export = pipeline.IngestPipeline.export

    async def pipeline_export(
        self: pipeline.IngestPipeline,
        project: Project,
        body: Body,
        kind: str,
        content_encoding: str | None = None,
    ) -> ExportTraceServiceResponse:
        current.get({})["export"] = time.monotonic()
        return await original_pipeline_export(self, project, body, kind, content_encoding)

    pipeline.IngestPipeline.export = pipeline_export  # type: ignore[method-assign]

    original_run = pipeline.WorkerPool.run

    async def run(self: pipeline.WorkerPool, job: Callable[..., T], *args: object) -> T:
        result = await original_run(self, job, *args)
        record = current.get({})
        record["prepared"] = time.monotonic()
        timeline = getattr(result, "timeline", None)
        if timeline is not None:
            (
                record["worker_in"],
                record["worker_out"],
                record["worker_cpu"],
                record["worker_runq"],
            ) = timeline
        return result

    pipeline.WorkerPool.run = run  # type: ignore[method-assign]

    original_write = writer.SpanWriter.write

    async def write(self: writer.SpanWriter, project_id: int, prepared: prepare.Prepared) -> None:
        record = current.get({})
        record["to_writer"] = time.monotonic()
        with lock:
            by_spans[id(prepared.normalized.spans)] = record
        await original_write(self, project_id, prepared)
        record["committed"] = time.monotonic()

    writer.SpanWriter.write = write  # type: ignore[method-assign]

    original_batches = SQLiteStore.write_span_batches

    def write_span_batches(self: SpanWrites, batches: Sequence[SpanBatch]) -> None:
        # Timed here, not around the writer's _commit: that answers the exports itself.
        started, cpu, waited = time.monotonic(), time.thread_time(), _waited()
        original_batches(self, batches)
        ended, cpu, waited = time.monotonic(), time.thread_time() - cpu, _waited() - waited
        with lock:
            for batch in batches:
                record = by_spans.pop(id(batch.spans), None)
                if record is not None:
                    record.update(
                        commit_start=started,
                        commit_end=ended,
                        commit_cpu=cpu,
                        commit_runq=waited,
                        group=len(batches),
                    )

    SQLiteStore.write_span_batches = write_span_batches  # type: ignore[method-assign]


def without_search_index() -> None:
    from threadline.server.store.sqlite import search

    def no_documents(traces: object) -> search.Documents:
        return search.Documents()

    search.documents = no_documents


def without_dashboard() -> None:
    # After everything else, so that no bench module hides a module of the same name.
    sys.path.append(str(Path(__file__).resolve().parent.parent))
    import no_dashboard

    from threadline.server.store.sqlite import SQLiteStore
    from threadline.server.store.sqlite.span_writes import SpanWrites

    open_store = SQLiteStore.__init__

    def open_without_dashboard(self: SpanWrites, path: str | Path) -> None:
        open_store(self, path)
        assert isinstance(self, SQLiteStore)  # the class patched below
        no_dashboard.drop_schema(self)

    SQLiteStore.__init__ = open_without_dashboard  # type: ignore[method-assign]
    no_dashboard.skip_upkeep()


def thread_names() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    set_name = 15  # PR_SET_NAME: the calling thread's name, 16 bytes with its NUL
    run = threading.Thread.run

    def named_run(self: threading.Thread) -> None:
        libc.prctl(set_name, self.name.encode()[:15], 0, 0, 0)
        run(self)

    threading.Thread.run = named_run  # type: ignore[method-assign]


HOOKS: dict[str, Callable[[], None]] = {
    "export_timeline": export_timeline,
    "thread_names": thread_names,
    "without_search_index": without_search_index,
    "without_dashboard": without_dashboard,
}


def install(names: str) -> None:
    """Install the hooks ``names`` lists (comma-separated); raise SystemExit, which stops
    the interpreter's start, for a name not in ``HOOKS`` or a hook that fails."""
    for name in filter(None, (n.strip() for n in names.split(","))):
        if name not in HOOKS:
            raise SystemExit(f"{NAMES}: no hook {name!r} (known: {', '.join(HOOKS)})")
        try:
            HOOKS[name]()
        except Exception as error:
            raise SystemExit(f"{NAMES}: the hook {name!r} failed: {error!r}") from error


install(os.environ.get(NAMES, ""))
