"""The one ingest path behind every receiver: admit, decode, normalise, commit.

OTLP/HTTP and OTLP/gRPC differ only in how a body and a key arrive and how the answer
is framed; both hand the body to ``IngestPipeline``, which does the rest:

- **Admission**: at most ``max_pending_exports`` exports are read, decoded or written at
  once per process, counted across both receivers; the next is refused (HTTP 503,
  gRPC UNAVAILABLE), which OTLP exporters retry, rather than queued without bound.
- **One ingest thread**: exports are decoded, normalised and written one at a time, off
  the event loop. The work is Python under the GIL, so more threads add no speed, and
  they slow the writer down, since each of its SQLite calls gives up the GIL and must
  then wait to win it back from threads busy normalising (measured in
  docs/benchmarks.md).
- **Durability**: ``export`` returns only after the spans are committed, so the answer
  a receiver sends means durable.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from threadline.server.errors import Overloaded
from threadline.server.ingest.decode import decode_request, decompress
from threadline.server.ingest.normalize import normalize_request
from threadline.server.model import Project
from threadline.server.settings import Settings
from threadline.server.store import Store


class IngestPipeline:
    """Owns the ingest thread and the admission counter of one server process.

    Admission is counted on the event loop only (both receivers run there), so a plain
    integer is race-free.
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.pending = 0
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="threadline-ingest")

    @contextmanager
    def admission(self) -> Iterator[None]:
        """Hold a place among the exports in flight, or raise ``Overloaded``."""
        limit = self.settings.max_pending_exports
        if self.pending >= limit:
            raise Overloaded(f"{self.pending} exports in flight: retry later")
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1

    async def export(
        self, project: Project, body: bytes, kind: str, content_encoding: str | None = None
    ) -> ExportTraceServiceResponse:
        """Inflate, decode, normalise and commit ``body`` on the ingest thread.

        ``kind`` is a media type of ``decode`` (protobuf or OTLP/JSON). Raises the
        ``ThreadlineError`` of a bad body; returns after the commit.
        """
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, self._ingest, project, body, kind, content_encoding
        )

    def _ingest(
        self, project: Project, body: bytes, kind: str, content_encoding: str | None
    ) -> ExportTraceServiceResponse:
        body = decompress(body, content_encoding, self.settings.max_decoded_bytes)
        result = normalize_request(decode_request(body, kind))
        self.store.write_spans(project.id, result.spans)
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = "; ".join(result.errors)
        return response

    def close(self) -> None:
        """Finish the export being written, if any; accept none after."""
        self._thread.shutdown(wait=True)


def tune_garbage_collector() -> None:
    """Tune this process's cyclic garbage collector for ingest (call at startup).

    Ingest allocates tens of thousands of short-lived dicts per export, all freed by
    reference counting once the export is written. At Python's default threshold the
    collector scans them dozens of times before that, for nothing: ~18 % of ingest's
    instructions (docs/benchmarks.md). Young objects are collected a hundred times less
    often (at most a few MB of cyclic garbage waits longer), and what startup built
    (modules, the app), which lives as long as the process, is never scanned again.
    """
    gc.freeze()
    gc.set_threshold(100_000, 10, 10)
