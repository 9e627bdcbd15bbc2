"""The one ingest path behind every receiver: admit, prepare in a worker, commit, answer.

OTLP/HTTP and OTLP/gRPC differ only in how a body and a key arrive and how the answer
is framed; both hand the body to ``IngestPipeline``, which does the rest, the same way
for every export whatever the load:

1. **Admission** (``admission.py``): at most ``max_receiving_exports`` bodies are being
   received and ``max_pending_exports`` exports in hand (prepared or committed) at
   once, counted across both receivers, and no project holds more than its share of
   either; the next is refused (HTTP 503, gRPC RESOURCE_EXHAUSTED with a RetryInfo),
   which OTLP exporters retry.
2. **Prepare** (``prepare.py``, in a worker process of ``workers.py``): inflate, decode,
   check the bounds, normalise, redact (the project's rules, read in the server process
   and given with the job). An export of more than ``PIECE_SPANS`` spans comes back
   in pieces, each prepared and committed in turn, so that others take turns with it.
3. **Commit** (``writer.py``): the writer thread writes the records and the rollups
   they change in one transaction.
4. **Answer**: only after the commit, so a 200 means committed and queryable.

An OTLP logs export takes the same path (``export_logs``): its GenAI events are kept
(``log_events.py``), the rest discarded. The events waiting for their span are given to
the worker preparing each export of the project's spans, which writes them onto their
spans (``waiting_events.py``).
"""

from __future__ import annotations

import asyncio
import time

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from threadline.server.ingest.admission import Gate
from threadline.server.ingest.body import Body
from threadline.server.ingest.prepare import (
    Job,
    Prepared,
    StorePreparer,
    prepare_export,
    prepare_log_export,
    prepare_piece,
    warm_up,
)
from threadline.server.ingest.waiting_events import WaitingEvents
from threadline.server.ingest.workers import WorkerPool
from threadline.server.ingest.writer import SpanWriter
from threadline.server.model import Project
from threadline.server.redaction.project_rules import ProjectRules
from threadline.server.redaction.rules import RedactionRules
from threadline.server.settings import Settings
from threadline.server.store import Store

# At most this many reasons for rejected spans are given in one answer.
_MAX_ERRORS = 5


class IngestPipeline:
    """The admission gates, the worker processes and the writer of the server.

    Admission and the count of exports in hand are kept on the event loop only (both
    receivers run there), so plain integers are race-free.
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.receiving = Gate(
            "being received", "max_receiving_exports", settings.max_receiving_exports
        )
        self.pending = Gate("in flight", "max_pending_exports", settings.max_pending_exports)
        self.workers = WorkerPool(settings.workers)
        # GenAI log events waiting for their span; the store's rows are read in
        # ``start``.
        self.waiting = WaitingEvents(settings.genai_event_wait_seconds)
        self.writer = SpanWriter(store, self.waiting)
        self.redaction = ProjectRules(store)  # each project's redaction rules
        self.in_hand = 0  # exports received and not yet answered
        self._last_finished = 0.0  # time.monotonic() when the last one was answered
        self._idle = asyncio.Event()  # set while none is in hand
        self._idle.set()

    @property
    def busy(self) -> bool:
        """Whether an export is being prepared or committed."""
        return self.in_hand > 0

    def quiet_seconds(self) -> float:
        """How long no export has been in hand (0 while one is): evaluations wait for a
        lull (evaluation/ingest_first.py)."""
        return 0.0 if self.in_hand else time.monotonic() - self._last_finished

    @property
    def disk_full(self) -> str | None:
        """Why the last commit failed, when the disk was full (/healthz says it)."""
        return self.writer.disk_full

    async def start(self) -> None:
        """Start the worker processes; return once one can take an export."""
        rules = RedactionRules()
        since = time.time_ns() - self.waiting.wait_ns
        for project_id, events in (
            await asyncio.to_thread(self.store.waiting_genai_events, since)
        ).items():
            self.waiting.add(project_id, events)
        await self.workers.start(warm_up, Job(self.settings, 0, rules, self.store.span_preparer()))

    async def export(
        self, project: Project, body: Body, kind: str, content_encoding: str | None = None
    ) -> ExportTraceServiceResponse:
        """Commit the export in ``body`` (whole, or its pieces); the answer says which
        spans were rejected.

        ``kind`` is a media type of ``decode`` (protobuf or OTLP/JSON). Raises the
        ``ThreadlineError`` of a bad body, or of one past the bounds of ``bounds.py``.
        """
        self.in_hand += 1
        self._idle.clear()
        try:
            # The project's rules and the settings its preparer carries are kept for a
            # moment: a store read only now and then, off the event loop.
            known = self._known_for_job(project.id)
            if known is None:
                known = await asyncio.to_thread(self._read_for_job, project.id)
            job = Job(self.settings, project.id, *known, self.waiting.snapshot(project.id))
            prepared = await self.workers.run(prepare_export, job, body, kind, content_encoding)
            if isinstance(prepared, Prepared):
                await self.writer.write(project.id, prepared)
                return _response(prepared.normalized.rejected, prepared.normalized.errors)
            # A huge export: a piece at a time. A retry after a failure rewrites the
            # pieces already stored, which changes nothing (spans are stored once).
            rejected = 0
            errors: list[str] = []
            for piece in prepared:
                done = await self.workers.run(prepare_piece, job, piece)
                await self.writer.write(project.id, done)
                rejected += done.normalized.rejected
                errors.extend(done.normalized.errors[: _MAX_ERRORS - len(errors)])
            return _response(rejected, errors)
        finally:
            self.in_hand -= 1
            self._last_finished = time.monotonic()
            if not self.in_hand:
                self._idle.set()

    async def export_logs(
        self, project: Project, body: Body, kind: str, content_encoding: str | None = None
    ) -> ExportLogsServiceResponse:
        """Commit the GenAI events of the OTLP logs export in ``body`` (its other records
        are discarded); raises as ``export`` does."""
        self.in_hand += 1
        self._idle.clear()
        try:
            rules = self.redaction.cached(project.id)
            if rules is None:
                rules = await asyncio.to_thread(self.redaction.get, project.id)
            job = Job(self.settings, project.id, rules, None)
            events = await self.workers.run(prepare_log_export, job, body, kind, content_encoding)
            if events:
                await self.writer.write_events(project.id, events)
            return ExportLogsServiceResponse()
        finally:
            self.in_hand -= 1
            self._last_finished = time.monotonic()
            if not self.in_hand:
                self._idle.set()

    def _known_for_job(self, project_id: int) -> tuple[RedactionRules, StorePreparer | None] | None:
        """The project's rules and its store preparer as this process knows them now,
        without a read; None if it does not know one of them (a start, a lull)."""
        rules = self.redaction.cached(project_id)
        preparer = self.store.span_preparer(project_id)
        return None if rules is None or preparer is None else (rules, preparer)

    def _read_for_job(self, project_id: int) -> tuple[RedactionRules, StorePreparer | None]:
        """The project's rules and its store preparer, read where not known (off the
        event loop): a job made without the setting a preparer carries would leave
        its rows to the writer (ClickHouse, an export that may name sessions)."""
        return self.redaction.get(project_id), self.store.span_preparer(project_id, read=True)

    async def wait_idle(self) -> None:
        """Return once no export is in hand."""
        await self._idle.wait()

    def close(self) -> None:
        """Stop the workers and the writer once the exports in hand are committed."""
        self.workers.close()
        self.writer.close()


def _response(rejected: int, errors: list[str]) -> ExportTraceServiceResponse:
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = "; ".join(errors)
    return response
