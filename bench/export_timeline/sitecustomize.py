"""Loaded by every Python process started with this directory on ``PYTHONPATH`` (the
server and its spawned ingest workers): each export's path through the server is
timed and, in the server process, written as one JSON line to ``$THREADLINE_TIMELINE``.
``bench/export_timeline.py`` runs a server with it and reads the lines; never used by
the product.

The times (``time.monotonic``, one clock for every process of the machine) of an export:
``start`` its handler called (body not read yet), ``export`` body in hand, ``worker_in``
and ``worker_out`` its job in the worker process (``worker_cpu`` the worker thread's
CPU meanwhile, ``worker_runq`` its time runnable but waiting for a core), ``prepared``
its answer back on the event loop, ``to_writer`` given to the writer, ``commit_start``
and ``commit_end`` the store's write of the group that held it (``group`` exports;
``commit_cpu`` and ``commit_runq`` the writer's), ``committed`` back on the event loop,
``end`` the answer framed.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import sys
import threading
import time

from threadline.server.ingest import prepare

_original_prepare = prepare.prepare_export


def _waited() -> float:
    """Seconds this thread has waited for a CPU while runnable (the kernel's run queue)."""
    with open("/proc/thread-self/schedstat") as stat:
        return int(stat.read().split()[1]) / 1e9


@functools.wraps(_original_prepare)
def prepare_export(*args, **kwargs):  # type: ignore[no-untyped-def]
    started, cpu, waited = time.monotonic(), time.thread_time(), _waited()
    result = _original_prepare(*args, **kwargs)
    if isinstance(result, prepare.Prepared):
        result.timeline = (  # type: ignore[attr-defined]
            started,
            time.monotonic(),
            time.thread_time() - cpu,
            _waited() - waited,
        )
    return result


prepare.prepare_export = prepare_export

_path = os.environ.get("THREADLINE_TIMELINE")
# The server process only (its workers are spawned with "--multiprocessing-fork").
if _path and "serve" in sys.orig_argv:
    from threadline.server.ingest import otlp_http, pipeline, writer

    _record: contextvars.ContextVar[dict[str, float]] = contextvars.ContextVar("timeline")
    _by_spans: dict[int, dict[str, float]] = {}
    _lock = threading.Lock()
    _out = open(_path, "a", buffering=1)  # noqa: SIM115 - open for the process's life

    _original_export = otlp_http._export

    async def _export(request, project):  # type: ignore[no-untyped-def]
        record = {"start": time.monotonic()}
        _record.set(record)
        try:
            return await _original_export(request, project)
        finally:
            record["end"] = time.monotonic()
            with _lock:
                _out.write(json.dumps(record) + "\n")

    otlp_http._export = _export

    _original_pipeline_export = pipeline.IngestPipeline.export

    async def pipeline_export(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        _record.get({})["export"] = time.monotonic()
        return await _original_pipeline_export(self, *args, **kwargs)

    pipeline.IngestPipeline.export = pipeline_export

    _original_run = pipeline.WorkerPool.run

    async def run(self, job, *args):  # type: ignore[no-untyped-def]
        result = await _original_run(self, job, *args)
        record = _record.get({})
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

    pipeline.WorkerPool.run = run

    _original_write = writer.SpanWriter.write

    async def write(self, project_id, prepared, *coming):  # type: ignore[no-untyped-def]
        record = _record.get({})
        record["to_writer"] = time.monotonic()
        with _lock:
            _by_spans[id(prepared.normalized.spans)] = record
        await _original_write(self, project_id, prepared, *coming)
        record["committed"] = time.monotonic()

    writer.SpanWriter.write = write

    from threadline.server.store.sqlite import SQLiteStore

    _original_batches = SQLiteStore.write_span_batches

    def write_span_batches(self, batches):  # type: ignore[no-untyped-def]
        # Timed here, not around the writer's _commit: that answers the exports itself.
        started, cpu, waited = time.monotonic(), time.thread_time(), _waited()
        _original_batches(self, batches)
        ended, cpu, waited = time.monotonic(), time.thread_time() - cpu, _waited() - waited
        with _lock:
            for batch in batches:
                record = _by_spans.pop(id(batch.spans), None)
                if record is not None:
                    record.update(
                        commit_start=started,
                        commit_end=ended,
                        commit_cpu=cpu,
                        commit_runq=waited,
                        group=len(batches),
                    )

    SQLiteStore.write_span_batches = write_span_batches
