"""The GenAI log events waiting for their span, as the server process knows them.

The store holds them (``Store.write_genai_events``); this is the server's own index of
the same rows, so that an export of spans finds its events without a store read: the
pipeline gives a project's waiting events to the worker that prepares its export
(``prepare.Job.waiting``), which writes them onto their spans. The writer thread
changes the index, after each commit: events whose span was not stored yet are added;
once a span is committed, its events leave the index, and those that came after the
worker took its copy (so its span did not take them) are returned, for the writer to
keep beside the span as late events (``Store.attach_genai_events``).

Bounded: an event waits ``genai_event_wait_seconds`` at most (the retention task
deletes the store's rows then), and a project keeps at most ``MAX_WAITING_SPANS``
spans' events here, its oldest dropped first (their rows stay until the wait is over:
a span that comes for them then gets no messages).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping

from threadline.server.ingest.log_events import SpanKey
from threadline.server.model import GenAIEvent

# Spans a project may have events waiting for; past it the oldest are dropped. Events
# wait seconds for their span (logs are exported every second, spans every five), so a
# project reaching this sends thousands of model calls a second, or events whose spans
# never come (spans sampled out).
MAX_WAITING_SPANS = 5_000


class WaitingEvents:
    def __init__(self, wait_seconds: int) -> None:
        self.wait_ns = wait_seconds * 10**9
        self._lock = threading.Lock()
        # Insertion order is arrival order: the oldest are first.
        self._by_project: dict[int, dict[SpanKey, list[GenAIEvent]]] = {}

    def add(self, project_id: int, events: Iterable[GenAIEvent]) -> None:
        with self._lock:
            waiting = self._by_project.setdefault(project_id, {})
            for event in events:
                waiting.setdefault((event.trace_id, event.span_id), []).append(event)
            while len(waiting) > MAX_WAITING_SPANS:
                del waiting[next(iter(waiting))]

    def snapshot(self, project_id: int) -> dict[SpanKey, tuple[GenAIEvent, ...]] | None:
        """A copy of the project's waiting events (None when none wait): a worker's."""
        with self._lock:
            waiting = self._by_project.get(project_id)
            if not waiting:
                return None
            self._expire(project_id, waiting)
            return {key: tuple(events) for key, events in waiting.items()} or None

    def settle(
        self, project_id: int, spans: Iterable[SpanKey], taken: Mapping[SpanKey, int]
    ) -> list[GenAIEvent]:
        """``spans`` are committed, having taken ``taken`` events each: their events
        leave the index; returns those no span took (they came too late for it)."""
        with self._lock:
            waiting = self._by_project.get(project_id)
            if not waiting:
                return []
            late: list[GenAIEvent] = []
            for key in spans:
                events = waiting.pop(key, None)
                if events is not None:
                    late.extend(events[taken.get(key, 0) :])
            if not waiting:
                del self._by_project[project_id]
            return late

    def spans_waiting(self, project_id: int) -> int:
        """Spans of the project with events waiting (a dict read: no lock needed)."""
        return len(self._by_project.get(project_id, ()))

    def count(self) -> int:
        """Spans with events waiting, across projects."""
        with self._lock:
            return sum(len(waiting) for waiting in self._by_project.values())

    def _expire(self, project_id: int, waiting: dict[SpanKey, list[GenAIEvent]]) -> None:
        cutoff = time.time_ns() - self.wait_ns
        while waiting:
            key = next(iter(waiting))
            if waiting[key][-1].received_ns >= cutoff:
                break
            del waiting[key]
