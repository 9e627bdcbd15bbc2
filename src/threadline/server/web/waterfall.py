"""A trace's spans as rows of a collapsible tree, each with its bar on the timeline."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from threadline.server.model import Span, TraceDetail


@dataclass(frozen=True)
class SpanRow:
    span: Span
    depth: int
    child_count: int
    ancestors: tuple[str, ...]  # span ids above it: collapsing one hides its subtree
    offset_pct: float
    width_pct: float


def span_rows(trace: TraceDetail) -> list[SpanRow]:
    """Depth-first, children in start order. A span whose parent never arrived is
    shown as a root rather than hidden."""
    ids = {s.span_id for s in trace.spans}
    children: dict[str | None, list[Span]] = defaultdict(list)
    for span in sorted(trace.spans, key=lambda s: (s.start_time, s.span_id)):
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children[parent].append(span)
    start = trace.start_time.timestamp()
    total = max(trace.end_time.timestamp() - start, 1e-9)
    rows: list[SpanRow] = []
    # An explicit stack, not recursion: a deep chain of spans must not overflow.
    stack: list[tuple[Span, int, tuple[str, ...]]] = [(s, 0, ()) for s in reversed(children[None])]
    seen: set[str] = set()
    while stack:
        span, depth, ancestors = stack.pop()
        if span.span_id in seen:  # a malformed cycle: show each span once
            continue
        seen.add(span.span_id)
        offset = (span.start_time.timestamp() - start) / total * 100
        width = max(span.duration_ms / 1000 / total * 100, 0.3)
        kids = children.get(span.span_id, [])
        rows.append(
            SpanRow(
                span,
                depth,
                len(kids),
                ancestors,
                round(max(offset, 0), 3),
                round(min(width, 100 - max(offset, 0)), 3),
            )
        )
        stack.extend((k, depth + 1, (*ancestors, span.span_id)) for k in reversed(kids))
    return rows
