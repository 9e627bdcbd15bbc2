"""The GenAI log events waiting for their span, as the server process knows them.

The store holds them (``Store.write_genai_events``); this is the server's own index of
the same rows, so that an export of spans finds its events without a store read: the
pipeline gives a project's waiting events to the worker that prepares its export
(``prepare.Job.waiting``), which writes them onto their spans: each span's as the texts
of its input and output messages (``log_events.SpanMessages``), made once per span and
kept until another of its events comes, since the whole project's set travels with
every export. The writer thread
changes the index, after each commit: events whose span was not stored yet are added;
once a span is committed, its events leave the index, and those that came after the
worker took its copy (so its span did not take them) are returned, for the writer to
keep beside the span as late events (``Store.attach_genai_events``).

Bounded: an event waits ``genai_event_wait_seconds`` at most (the retention task
deletes the store's rows then), and a project keeps at most ``MAX_WAITING_SPANS``
spans' events here, and ``MAX_WAITING_BYTES`` of them, the spans whose events came
longest ago dropped first (their rows stay until the wait is over: a span that comes
for them then gets no messages). The bytes bound the memory and what every export of
the project's spans carries to its worker: without it, events for one span that never
comes grew the index by each logs export's size (15 MB an export, for 900 s).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping

from threadline.server.ingest.log_events import SpanKey, SpanMessages, span_messages
from threadline.server.model import GenAIEvent

# Spans a project may have events waiting for; past it the oldest are dropped. Events
# wait seconds for their span (logs are exported every second, spans every five), so a
# project reaching this sends thousands of model calls a second, or events whose spans
# never come (spans sampled out).
MAX_WAITING_SPANS = 5_000
# What a project's waiting events may weigh: their messages' text, and each event's
# own cost (``EVENT_BYTES``, so that a flood of empty events is bounded too). Every
# export of the project's spans is given a copy (16 MiB of events took ~50 ms to
# pickle; as the texts the job carries, some twenty times less: benchmarks.md), and
# it is more than 5 s of events of a project making a hundred model calls a second.
MAX_WAITING_BYTES = 16 * 1024 * 1024
EVENT_BYTES = 200


def _weight(events: Iterable[GenAIEvent]) -> int:
    return sum(len(event.message) + EVENT_BYTES for event in events)


class _Span:
    """One span's waiting events, in arrival order, and the texts it takes (made when
    first asked for, and again after another event came). The texts weigh about what
    the events' messages do, uncounted by the weight: a project's index may hold up to
    twice ``MAX_WAITING_BYTES`` once copied for a job."""

    __slots__ = ("events", "messages")

    def __init__(self) -> None:
        self.events: list[GenAIEvent] = []
        self.messages: SpanMessages | None = None


class WaitingEvents:
    def __init__(self, wait_seconds: int) -> None:
        self.wait_ns = wait_seconds * 10**9
        self._lock = threading.Lock()
        # Insertion order is the order of each span's latest event: a span given
        # another event moves to the end, so the first is the one whose events came
        # longest ago (what ``_expire`` and the bounds drop first).
        self._by_project: dict[int, dict[SpanKey, _Span]] = {}
        self._bytes: dict[int, int] = {}  # each project's weight (``_weight``)

    def add(self, project_id: int, events: Iterable[GenAIEvent]) -> None:
        with self._lock:
            waiting = self._by_project.setdefault(project_id, {})
            weight = self._bytes.get(project_id, 0)
            for event in events:
                key = (event.trace_id, event.span_id)
                found = waiting.pop(key, None)
                if found is None:
                    found = _Span()
                found.events.append(event)
                found.messages = None
                waiting[key] = found
                weight += len(event.message) + EVENT_BYTES
            self._bytes[project_id] = weight
            self._expire(project_id, waiting)
            while waiting and (
                len(waiting) > MAX_WAITING_SPANS or self._bytes[project_id] > MAX_WAITING_BYTES
            ):
                self._drop(project_id, waiting, next(iter(waiting)))
            self._forget_if_empty(project_id)

    def snapshot(self, project_id: int) -> dict[SpanKey, SpanMessages] | None:
        """A copy of the project's waiting events, as their spans take them (None when
        none wait): a worker's."""
        with self._lock:
            waiting = self._by_project.get(project_id)
            if not waiting:
                return None
            self._expire(project_id, waiting)
            found: dict[SpanKey, SpanMessages] = {}
            for key, span in waiting.items():
                if span.messages is None:
                    span.messages = span_messages(span.events)
                found[key] = span.messages
            self._forget_if_empty(project_id)
            return found or None

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
                events = self._drop(project_id, waiting, key)
                if events is not None:
                    late.extend(events[taken.get(key, 0) :])
            self._forget_if_empty(project_id)
            return late

    def spans_waiting(self, project_id: int) -> int:
        """Spans of the project with events waiting (a dict read: no lock needed)."""
        return len(self._by_project.get(project_id, ()))

    def count(self) -> int:
        """Spans with events waiting, across projects."""
        with self._lock:
            return sum(len(waiting) for waiting in self._by_project.values())

    def weight(self) -> int:
        """What the waiting events weigh, across projects (``_weight``)."""
        with self._lock:
            return sum(self._bytes.values())

    def _expire(self, project_id: int, waiting: dict[SpanKey, _Span]) -> None:
        cutoff = time.time_ns() - self.wait_ns
        while waiting:
            key = next(iter(waiting))
            if waiting[key].events[-1].received_ns >= cutoff:
                break
            self._drop(project_id, waiting, key)

    def _drop(
        self, project_id: int, waiting: dict[SpanKey, _Span], key: SpanKey
    ) -> list[GenAIEvent] | None:
        span = waiting.pop(key, None)
        if span is None:
            return None
        self._bytes[project_id] -= _weight(span.events)
        return span.events

    def _forget_if_empty(self, project_id: int) -> None:
        if not self._by_project.get(project_id):
            self._by_project.pop(project_id, None)
            self._bytes.pop(project_id, None)
