"""The writer: the one thread of the server process that writes spans into the store.

Every export's records, whichever receiver and worker process they came through, are
committed here, in the order they became ready, with the rollups they change
(``Store.write_span_batches``). One writer means no lock between writers: SQLite's
own lock is met only by the CLI (``threadline keys``, ``projects``) writing the same
file now and then. The pipeline answers an export once its batch is committed.

**Group commit.** The exports that became ready while a transaction ran are committed
together in the next one (more join while it holds fewer than ``GROUP_SPANS`` spans):
under load a transaction's fixed costs (the commit, the rollups of the sessions
several exports share) are paid once for the group rather than once per export, and
an idle server commits each export alone, at once. Each export is still answered only
after its own commit. Should a group fail for another reason than a full disk, its
exports are written again one by one, so that one bad export fails alone.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from threadline.server.errors import StorageFull
from threadline.server.ingest.log_events import SpanKey, fill_with_late_events
from threadline.server.ingest.prepare import Prepared
from threadline.server.ingest.waiting_events import WaitingEvents
from threadline.server.model import GenAIEvent
from threadline.server.store import Store
from threadline.server.store.base import SpanBatch

log = logging.getLogger("threadline.ingest")

# A group takes exports while it has fewer spans than this: large enough that the
# exports of several busy exporters share a commit, small enough that the first of them
# does not wait long for the last (an export's pieces have 5,000 spans at most).
GROUP_SPANS = 8_000


@dataclass(frozen=True)
class _Job:
    batch: SpanBatch
    done: Future[None]
    # The waiting GenAI events each span took (``Prepared.joined``).
    joined: dict[SpanKey, int]


@dataclass(frozen=True)
class _EventsJob:
    project_id: int
    events: list[GenAIEvent]
    done: Future[None]


@dataclass
class WriterCounts:
    """What the writer has committed since the server started (/healthz says it)."""

    transactions: int = 0  # transactions committed
    exports: int = 0  # exports (or pieces of one) they committed
    # Of those, the ones with spans whose store preparation the worker left to the
    # writer (``Store.span_preparer``: ClickHouse, when only the writer can name their
    # sessions): the work the worker did not take off this process.
    prepared_by_writer: int = 0


class SpanWriter:
    def __init__(self, store: Store, waiting: WaitingEvents | None = None) -> None:
        self.store = store
        self.waiting = waiting if waiting is not None else WaitingEvents(0)
        self.counts = WriterCounts()
        # Why the last write failed, when the disk was full (None since one succeeded):
        # /healthz says it.
        self.disk_full: str | None = None
        self._jobs: queue.SimpleQueue[_Job | _EventsJob | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="threadline-writer", daemon=True)
        self._thread.start()

    async def write(self, project_id: int, prepared: Prepared) -> None:
        """Commit the records of ``prepared`` for ``project_id``."""
        if self._closed:
            raise RuntimeError("the writer is closed")
        batch = SpanBatch(project_id, prepared.normalized.spans, prepared.for_store)
        done: Future[None] = Future()
        self._jobs.put(_Job(batch, done, prepared.joined))
        # Cancelled before its turn (the client went away): the writer skips it.
        await asyncio.wrap_future(done)

    async def write_events(self, project_id: int, events: list[GenAIEvent]) -> None:
        """Commit the GenAI events of one logs export for ``project_id``."""
        if self._closed:
            raise RuntimeError("the writer is closed")
        done: Future[None] = Future()
        self._jobs.put(_EventsJob(project_id, events, done))
        await asyncio.wrap_future(done)

    def close(self) -> None:
        """Commit what was given; take nothing after."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        last = False
        while not last:
            job = self._jobs.get()
            if job is None:
                return
            if isinstance(job, _EventsJob):
                self._commit_events(job)
                continue
            group, spans = [job], len(job.batch.spans)
            events: list[_EventsJob] = []
            # Whatever else is ready joins the group, without waiting for more.
            while spans < GROUP_SPANS:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    last = True
                    break
                if isinstance(more, _EventsJob):
                    # After the group: the order of the two does not change what is kept.
                    events.append(more)
                    continue
                group.append(more)
                spans += len(more.batch.spans)
            self._commit([j for j in group if j.done.set_running_or_notify_cancel()])
            for events_job in events:
                self._commit_events(events_job)

    def _commit(self, group: list[_Job]) -> None:
        if not group:
            return
        try:
            self.store.write_span_batches([job.batch for job in group])
        except StorageFull as error:
            # Every export of the group would meet the same full disk.
            self.disk_full = error.message
            for job in group:
                job.done.set_exception(error)
            return
        except Exception as error:  # noqa: BLE001 - any failure: retried export by export
            if len(group) == 1:
                group[0].done.set_exception(error)
                return
            log.warning(
                "a group of %d exports failed (%r): each is written alone", len(group), error
            )
            for job in group:
                self._commit([job])
            return
        except BaseException as error:
            # Not the writer's to handle, but no exporter may wait for an answer forever.
            for job in group:
                job.done.set_exception(error)
            raise
        self.disk_full = None
        for job in group:
            self._settle_events(job)
        self.counts.transactions += 1
        self.counts.exports += len(group)
        self.counts.prepared_by_writer += sum(
            1 for job in group if job.batch.prepared is None and job.batch.spans
        )
        for job in group:
            job.done.set_result(None)

    def _settle_events(self, job: _Job) -> None:
        """The committed spans' waiting events leave the index; those that came after
        the spans' worker took its copy are kept beside them (late events)."""
        project_id = job.batch.project_id
        if not self.waiting.spans_waiting(project_id):
            return  # most projects, most of the time: no event waits
        spans = ((span.trace_id, span.span_id) for span in job.batch.spans)
        late = self.waiting.settle(project_id, spans, job.joined)
        if late:
            try:
                self.store.attach_genai_events(project_id, late)
            except Exception:
                log.exception("could not keep %d late GenAI events", len(late))
                return
            self._fill_spans(project_id, late)

    def _fill_spans(self, project_id: int, late: list[GenAIEvent]) -> None:
        """The model calls that ``late`` events name and that lack an input or output
        take them, written again with them (log_events.fill_with_late_events). The
        events are kept already: should this fail, the trace's detail still shows
        them."""
        by_span: dict[SpanKey, list[GenAIEvent]] = {}
        for event in late:
            by_span.setdefault((event.trace_id, event.span_id), []).append(event)
        try:
            spans = self.store.spans_taking_late_events(project_id, list(by_span))
            filled = [
                span
                for span in spans
                if fill_with_late_events(span, by_span[(span.trace_id, span.span_id)])
            ]
            if filled:
                self.store.replace_spans(project_id, filled)
        except Exception:
            log.exception("could not write %d late GenAI events onto their spans", len(late))

    def _commit_events(self, job: _EventsJob) -> None:
        if not job.done.set_running_or_notify_cancel():
            return
        try:
            waiting = self.store.write_genai_events(job.project_id, job.events)
        except StorageFull as error:
            self.disk_full = error.message
            job.done.set_exception(error)
            return
        except Exception as error:  # noqa: BLE001 - the export's answer says it
            job.done.set_exception(error)
            return
        except BaseException as error:
            job.done.set_exception(error)
            raise
        self.waiting.add(job.project_id, waiting)
        if len(waiting) < len(job.events):  # their spans are stored: late events
            kept = {event.event_id for event in waiting}
            self._fill_spans(
                job.project_id, [event for event in job.events if event.event_id not in kept]
            )
        job.done.set_result(None)
