"""GenAI log events as a span's messages, shared by ingest and both stores.

A span takes the events that waited for it when it is prepared (ingest/log_events.py).
An event that comes after its span was stored (its logs exported late, or retried) is
kept beside the span, and a trace's detail shows it, on every store by one rule
(``takes_late_events``): only a model call (an ``LLM`` span) takes late events, as the
GenAI conventions emit a call's message events in the context of the call's own span;
and such a span without an input (or output) of its own takes its late input (or
output) events' messages, in the shape its input would have had, had they come first.
The ingest writer writes such a span again with them (``Store.replace_spans``), so the
previews, the session, search and exports follow; the detail shows them too
(``with_late_events``) where that did not happen (a failed rewrite, a side filled by an
earlier late export). Inferred sessions were placed when the span was stored
(docs/integrations.md says so).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

from threadline.server.chat_messages import parse_messages
from threadline.server.model import GenAIEvent, TraceDetail


class _Payloads(Protocol):
    """A span as the API shows it (``Span``) or as it is stored (``SpanRecord``)."""

    @property
    def span_type(self) -> str: ...
    @property
    def input(self) -> Any: ...
    @property
    def output(self) -> Any: ...


def in_order(events: Sequence[GenAIEvent]) -> list[GenAIEvent]:
    """A span's events in the order they were emitted: by time, then as received."""
    return sorted(events, key=lambda e: (e.time_ns, e.received_ns, e.seq))


def messages_text(events: Sequence[GenAIEvent]) -> str:
    """The JSON text of the list of ``events``' messages (each one JSON already)."""
    return "[" + ",".join(event.message for event in events) + "]"


def takes_late_events(span: _Payloads) -> bool:
    """Whether late events may show on ``span``: a model call (an ``LLM`` span, as a
    GenAI span is typed) that lacks an input or an output of its own. The events of any
    other span are kept (they go with its trace) and never shown."""
    return span.span_type == "LLM" and (span.input is None or span.output is None)


def may_take_late_events(detail: TraceDetail) -> bool:
    """Whether a late event could show in ``detail``, so that a store whose read of them
    is a statement of its own skips it for the traces with nothing to take."""
    return any(takes_late_events(span) for span in detail.spans)


def with_late_events(detail: TraceDetail, events: Sequence[GenAIEvent]) -> TraceDetail:
    """``detail`` with the late ``events`` of its spans as their input or output, where
    a span takes them (``takes_late_events``) and has none."""
    if not events:
        return detail
    by_span: dict[str, list[GenAIEvent]] = defaultdict(list)
    for event in events:
        by_span[event.span_id].append(event)
    for span in detail.spans:
        mine = by_span.get(span.span_id)
        if not mine or not takes_late_events(span):
            continue
        ordered = in_order(mine)
        if span.input is None:
            span.input = _messages([e for e in ordered if not e.is_output])
        if span.output is None:
            span.output = _messages([e for e in ordered if e.is_output])
    return detail


def _messages(events: Sequence[GenAIEvent]) -> Any:
    """The events' messages as a span's parsed input is (None for none)."""
    if not events:
        return None
    text = messages_text(events)
    found = parse_messages(text)
    if found is None:
        return json.loads(text)
    return found[0]
