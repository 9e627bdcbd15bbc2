"""The one ingest path behind every receiver: admit, check, then queue or write.

OTLP/HTTP and OTLP/gRPC differ only in how a body and a key arrive and how the answer
is framed; both hand the body to ``IngestPipeline``, which does the rest:

- **Admission** (``admission.py``): at most ``max_receiving_exports`` bodies are being
  received and ``max_pending_exports`` exports checked or written at once per process,
  counted across both receivers, and no project holds more than its share of either;
  the next is refused (HTTP 503, gRPC UNAVAILABLE), which OTLP exporters retry, rather
  than held in memory. A place of work is taken only once the whole body is in hand.
- **One ingest thread**: exports are normalised and written one at a time, off the
  event loop (and decoded there, unless queued: see Durability). The work is Python
  under the GIL, so more threads add no speed, and they slow the writer down, since
  each of its SQLite calls gives up the GIL and must then wait to win it back from
  threads busy normalising (measured in docs/benchmarks.md).
- **Durability**: an export is answered once it is durable. If the ingest thread is
  idle it is written into the store first, so it is queryable when the answer arrives.
  If the thread is busy, the export is checked (inflated, decoded, every span valid),
  put in the intake queue on disk (``intake.py``) and answered at once; the ingest
  thread of whichever worker is free writes it moments later. An export that fails the
  check, or finds the queue full, takes the first path, so its answer carries the
  exact error or ``partial_success``, and a full queue slows exporters down.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from threadline.server.errors import Overloaded, StorageFull
from threadline.server.ingest.admission import Gate
from threadline.server.ingest.bounds import check_export, count_wire_spans
from threadline.server.ingest.decode import PROTOBUF, decode_request, decompress
from threadline.server.ingest.intake import Intake
from threadline.server.ingest.normalize import (
    Normalized,
    SpanItem,
    all_valid,
    normalize_spans,
    span_items,
)
from threadline.server.model import Project
from threadline.server.redaction.project_rules import ProjectRules
from threadline.server.redaction.redactor import redact_spans
from threadline.server.settings import Settings
from threadline.server.store import Store

log = logging.getLogger("threadline.ingest")

# Spans normalised and written in one ingest-thread job: a larger export is written in
# pieces of this many, other exports taking turns in between (~0.6 s of work a piece),
# and is never queued.
PIECE_SPANS = 5_000
# How often an idle worker looks for exports queued by other workers.
_POLL_S = 0.05
# How long the queue is left alone after writing a queued export failed (the store is
# down, say), rather than failing again at every poll.
_RETRY_S = 1.0


class IngestPipeline:
    """Owns the ingest thread, the admission counter and the intake queue of one server
    process.

    Admission and the count of work given to the ingest thread are kept on the event
    loop only (both receivers run there), so plain integers are race-free.
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.receiving = Gate(
            "being received", "max_receiving_exports", settings.max_receiving_exports
        )
        self.pending = Gate("in flight", "max_pending_exports", settings.max_pending_exports)
        self.intake: Intake | None = None  # made at start-up
        self.redaction = ProjectRules(store)  # each project's redaction rules
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="threadline-ingest")
        self._busy = 0  # jobs given to the ingest thread and not yet finished
        self._last_finished = 0.0  # time.monotonic() when the last job finished
        self._draining = False  # a job that writes a queued export is given
        self._quiet_until = 0.0
        self._poller: asyncio.Task[None] | None = None
        self._closed = False
        # Why the last write failed, when the disk was full (None since one succeeded):
        # /healthz says it.
        self.disk_full: str | None = None
        self._inflating = threading.Lock()

    @property
    def busy(self) -> bool:
        """Whether this process's ingest thread has work."""
        return self._busy > 0

    def quiet_seconds(self) -> float:
        """How long the ingest thread has had no work (0 while it has some): evaluations
        wait for a lull (evaluation/ingest_first.py)."""
        return 0.0 if self._busy else time.monotonic() - self._last_finished

    def start(self) -> None:
        """Take over what dead processes left in the queue, and watch it (on the event
        loop, at start-up)."""
        if self.settings.max_queued_exports <= 0:
            return
        self.intake = Intake(self.settings.data_dir / "intake", self.settings.max_queued_exports)
        recovered = self.intake.recover()
        if recovered:
            log.info("%d acknowledged exports were still queued: writing them", recovered)
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def export(
        self, project: Project, body: bytes, kind: str, content_encoding: str | None = None
    ) -> ExportTraceServiceResponse:
        """Make the export in ``body`` durable: written, or queued if the ingest thread
        is busy (see the module's docstring).

        ``kind`` is a media type of ``decode`` (protobuf or OTLP/JSON). Raises the
        ``ThreadlineError`` of a bad body, or of one past the bounds of ``bounds.py``.
        """
        inflated = None
        if self._busy and self.intake is not None and self._has_room(self.intake):
            inflated = self._inflate(body, content_encoding, wait=False)
        if inflated is not None and self.intake is not None:
            # Checked here, on the event loop: ~4 µs a span (docs/benchmarks.md).
            body = inflated
            request = self._decode(body, kind)
            spans = check_export(request, self.settings)
            if (
                spans <= PIECE_SPANS
                and all_valid(request)
                and self._queued(
                    self.intake,
                    project,
                    body if kind == PROTOBUF else request.SerializeToString(),
                )
            ):
                self._drain()
                return ExportTraceServiceResponse()
            return await self._write_in_pieces(project.id, request)
        done = await self._run(self._ingest, project, body, kind, content_encoding)
        if isinstance(done, ExportTraceServiceResponse):
            return done
        return await self._write_in_pieces(project.id, done)

    @staticmethod
    def _has_room(intake: Intake) -> bool:
        try:
            return intake.has_room()
        except OSError:
            log.exception("the intake queue cannot be read; writing exports as they come")
            return False

    @staticmethod
    def _queued(intake: Intake, project: Project, body: bytes) -> bool:
        # A full disk, say: the export is written before it is answered instead.
        try:
            intake.put(project.id, body)
        except OSError as error:
            if error.errno == errno.ENOSPC:
                log.warning("the intake queue's disk is full; writing the export before answering")
            else:
                log.exception("queueing an export failed; writing it before answering")
            return False
        return True

    def _run(self, job: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Give ``job`` to the ingest thread, counted in ``_busy`` until it finishes."""
        self._busy += 1
        future = asyncio.get_running_loop().run_in_executor(self._thread, job, *args)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _: object) -> None:
        self._busy -= 1
        self._last_finished = time.monotonic()
        self._drain_if_idle()  # exports other workers queued meanwhile are ours too

    def _ingest(
        self, project: Project, body: bytes, kind: str, content_encoding: str | None
    ) -> ExportTraceServiceResponse | ExportTraceServiceRequest:
        """Write the export, or give back the decoded request if it is too large to be
        written in one go (``_write_in_pieces`` does it then)."""
        inflated = self._inflate(body, content_encoding, wait=True)
        assert inflated is not None  # waited for its turn
        request = self._decode(inflated, kind)
        if check_export(request, self.settings) > PIECE_SPANS:
            return request
        return self._write(project.id, request)

    def _inflate(self, body: bytes, encoding: str | None, wait: bool) -> bytes | None:
        """``body`` inflated, one body at a time per process: an inflated body may take
        ``max_decoded_bytes``, and the event loop and the ingest thread must not hold
        two. Without ``wait`` (on the event loop), None while another is inflating."""
        if (encoding or "identity").strip().lower() in ("", "identity"):
            return decompress(body, encoding, self.settings.max_decoded_bytes)
        if not self._inflating.acquire(blocking=wait):
            return None
        try:
            return decompress(body, encoding, self.settings.max_decoded_bytes)
        finally:
            self._inflating.release()

    def _decode(self, body: bytes, kind: str) -> ExportTraceServiceRequest:
        if kind == PROTOBUF:  # too many spans are refused before they take memory
            count_wire_spans(body, self.settings.max_spans_per_export)
        return decode_request(body, kind)

    async def _write_in_pieces(
        self, project_id: int, request: ExportTraceServiceRequest
    ) -> ExportTraceServiceResponse:
        """Write ``request`` as one ingest-thread job per ``PIECE_SPANS`` spans, so the
        exports of other clients (and queued ones) take their turns in between rather
        than wait for all of it. An export answered only once every piece is written:
        a retry after a failure rewrites the pieces already stored, which changes
        nothing (spans are stored once)."""
        items = await self._run(span_items, request)
        rejected = 0
        errors: list[str] = []
        for start in range(0, len(items), PIECE_SPANS):
            piece = items[start : start + PIECE_SPANS]
            result = await self._run(self._write_items, project_id, piece)
            rejected += result.rejected
            errors.extend(result.errors[: 5 - len(errors)])
        return _response(rejected, errors)

    def _write(
        self, project_id: int, request: ExportTraceServiceRequest
    ) -> ExportTraceServiceResponse:
        result = self._write_items(project_id, span_items(request))
        return _response(result.rejected, result.errors)

    def _write_items(self, project_id: int, items: list[SpanItem]) -> Normalized:
        result = normalize_spans(items)
        # Before anything is stored: the project's rules, as plain data.
        redact_spans(result.spans, self.redaction.get(project_id))
        try:
            self.store.write_spans(project_id, result.spans)
        except StorageFull as error:
            self.disk_full = error.message
            raise
        self.disk_full = None
        return result

    # --- the intake queue -----------------------------------------------------------

    def _drain(self) -> None:
        """Have the ingest thread write one queued export, and then the next: one at a
        time, so that exports answered only once written wait for at most one."""
        if self._draining or self._closed or time.monotonic() < self._quiet_until:
            return
        self._draining = True
        self._run(self._write_queued).add_done_callback(self._drained)

    def _drained(self, future: asyncio.Future[bool]) -> None:
        self._draining = False
        if future.exception() is not None or not future.result():
            return
        self._drain()

    def _write_queued(self) -> bool:
        """Write the oldest queued export; False if there was none, or it failed."""
        assert self.intake is not None
        claim = self.intake.claim()
        if claim is None:
            return False
        try:
            request = ExportTraceServiceRequest.FromString(claim.body)
        except DecodeError:
            # It decoded before it was queued: the file was damaged on disk since.
            log.error("queued export %s is damaged; set aside", claim.path.name)
            self.intake.set_aside(claim)
            return True
        try:
            response = self._write(claim.project_id, request)
        except Exception as error:
            # Left for later rather than lost: the store may be down or the disk full
            # for a while.
            if isinstance(error, Overloaded):
                log.warning("queued export %s not written yet: %s", claim.path.name, error)
            else:
                log.exception("writing the queued export %s failed; retrying", claim.path.name)
            self.intake.release(claim)
            self._quiet_until = time.monotonic() + _RETRY_S
            return False
        rejected = response.partial_success
        if rejected.rejected_spans:  # all_valid() let through what normalising rejects: a bug
            log.error(
                "queued export %s: %d spans rejected after it was acknowledged: %s",
                claim.path.name,
                rejected.rejected_spans,
                rejected.error_message,
            )
        self.intake.done(claim)
        return True

    async def _poll(self) -> None:
        """Exports queued by other workers get written by this one when it is idle."""
        while True:
            await asyncio.sleep(_POLL_S)
            self._drain_if_idle()

    def _drain_if_idle(self) -> None:
        """Write what is queued, if the ingest thread is idle. Only if there is some: a
        job given for nothing would make the thread look busy, and the next export of a
        lone exporter would be queued rather than written before its answer."""
        if self._busy or self._draining or self.intake is None:
            return
        if time.monotonic() < self._quiet_until:
            return
        try:
            waiting = bool(self.intake.queued())
        except OSError:
            log.exception("the intake queue cannot be read")
            self._quiet_until = time.monotonic() + _RETRY_S
            return
        if waiting:
            self._drain()

    def close(self) -> None:
        """Finish the export being written and write what is queued; accept none after."""
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
        if self.intake is not None:
            self._thread.submit(self._write_all_queued)
        self._thread.shutdown(wait=True)
        if self.intake is not None:
            self.intake.close()

    def _write_all_queued(self) -> None:
        while self._write_queued():
            pass


def _response(rejected: int, errors: list[str]) -> ExportTraceServiceResponse:
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = "; ".join(errors)
    return response


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
