"""How a trace's and a session's totals follow from their parts.

Pure functions over plain rows, shared by every backend so that the same spans give
the same numbers whatever stores them. A rollup is recomputed from all of its parts
whenever a part it already counts may have changed, which keeps it right under
duplicates, retries and spans that arrive out of order or in later exports. The one
exception is a session's next turns: traces that were never stored, all starting after
everything the session counts, are added to its rollup (``merge_session``), with the
same result as recomputing it, so that writing to a session of 10,000 traces costs no
more than writing to a new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from threadline.server.context_window import context_use
from threadline.server.model import PREVIEW_CHARS
from threadline.server.previews import input_preview
from threadline.server.store.model_usage import ModelSpan

__all__ = ["PREVIEW_CHARS", "SessionRollup", "SpanFacts", "StoredSpanFacts", "TraceRollup"]


class SpanFacts(ModelSpan, Protocol):
    """The part of a span that its trace's rollup reads: its model, tokens and cost
    (``ModelSpan``: the model with the input tokens says how full its context was) and
    the rest below.

    A ``SpanRecord`` still in hand has all of it; a store reading spans back can use
    ``StoredSpanFacts`` and read only these columns.
    """

    @property
    def span_id(self) -> str: ...
    @property
    def parent_span_id(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def start_ns(self) -> int: ...
    @property
    def end_ns(self) -> int: ...
    @property
    def is_error(self) -> bool: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def metadata(self) -> dict[str, Any]: ...
    @property
    def tags(self) -> list[str]: ...
    @property
    def has_input(self) -> bool: ...
    @property
    def has_output(self) -> bool: ...
    @property
    def input_text(self) -> str | None: ...  # the whole input: previews are made from it
    @property
    def output_preview(self) -> str | None: ...


@dataclass(slots=True)
class StoredSpanFacts:
    """``SpanFacts`` read back from a store."""

    span_id: str
    parent_span_id: str | None
    name: str
    start_ns: int
    end_ns: int
    is_error: bool
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cost_usd: float | None
    session_id: str | None
    user_id: str | None
    metadata: dict[str, Any]
    tags: list[str]
    has_input: bool
    has_output: bool
    # Filled in only for the spans ``preview_sources`` names: payloads are large, and
    # a store need not read any other span's. The whole input, since the turn's message
    # comes last in a chat (``previews``); the output's first PREVIEW_CHARS characters.
    input_text: str | None = None
    output_preview: str | None = None
    model: str | None = None


@dataclass(slots=True)
class TraceRollup:
    trace_id: str
    session_id: str | None
    user_id: str | None
    name: str
    start_ns: int
    end_ns: int
    span_count: int
    error_count: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None
    status: str
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    input_preview: str | None = None
    output_preview: str | None = None
    # The largest share of its model's context window an LLM call of the trace filled
    # (``context_window``); None when no call's window is known.
    context_use: float | None = None


@dataclass(slots=True)
class SessionRollup:
    session_id: str
    trace_count: int
    span_count: int
    start_ns: int
    end_ns: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None
    error_count: int
    user_ids: list[str]
    first_input: str | None
    last_output: str | None
    # The largest ``context_use`` of its traces (the Sessions list sorts and filters by it).
    peak_context_use: float | None = None

    @classmethod
    def empty(cls, session_id: str, start_ns: int = 0, end_ns: int = 0) -> SessionRollup:
        """A session that counts no trace (yet), between the given times."""
        return cls(session_id, 0, 0, start_ns, end_ns, 0, 0, 0, None, 0, [], None, None)


F = TypeVar("F", bound=SpanFacts)


def preview_sources(spans: Sequence[F]) -> tuple[F | None, F | None]:
    """The spans whose input and output stand for the trace's: the root's when it has
    them, else the earliest span's input and the latest-ending span's output."""
    by_start = sorted(spans, key=_start_order)
    return _preview_sources(by_start, _root(by_start))


def _preview_sources(by_start: Sequence[F], root: F) -> tuple[F | None, F | None]:
    source_in = root if root.has_input else next((s for s in by_start if s.has_input), None)
    source_out = root if root.has_output else None
    if source_out is None:
        # The latest end; of equal ends, the earliest start.
        for span in by_start:
            if span.has_output and (source_out is None or span.end_ns > source_out.end_ns):
                source_out = span
    return source_in, source_out


def roll_up_trace(trace_id: str, spans: Sequence[SpanFacts]) -> TraceRollup:
    """The rollup of one trace from all of its spans stored so far (at least one)."""
    by_start = sorted(spans, key=_start_order)
    root = _root(by_start)
    # Trace-level fields: the root's value when it carries one, else the earliest
    # span's that does. This is what makes a session id set deep inside a turn, or on
    # a span that arrives last, apply to the whole trace.
    session_id = root.session_id or next((s.session_id for s in by_start if s.session_id), None)
    user_id = root.user_id or next((s.user_id for s in by_start if s.user_id), None)
    metadata: dict[str, Any] = {}
    tags: list[str] = []
    error_count = input_tokens = output_tokens = total_tokens = 0
    end_ns = by_start[0].end_ns
    context: float | None = None
    # One pass, in start order (float costs then sum the same whatever order the spans
    # came in); most spans have no metadata, tags or tokens.
    for span in by_start:
        if span.metadata:
            metadata.update(span.metadata)
        if span.tags:
            tags.extend(tag for tag in span.tags if tag not in tags)
        if span.is_error:
            error_count += 1
        if span.input_tokens:
            input_tokens += span.input_tokens
        if span.output_tokens:
            output_tokens += span.output_tokens
        if span.total_tokens:
            total_tokens += span.total_tokens
        if span.input_tokens and span.model:
            context = _larger(context, context_use(span.model, span.input_tokens))
        end_ns = max(end_ns, span.end_ns)
    source_in, source_out = _preview_sources(by_start, root)
    return TraceRollup(
        trace_id=trace_id,
        session_id=session_id,
        user_id=user_id,
        name=root.name,
        start_ns=by_start[0].start_ns,
        end_ns=end_ns,
        span_count=len(spans),
        error_count=error_count,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total_tokens,
        cost_usd=_sum_known(s.cost_usd for s in by_start),
        status="error" if error_count else "ok",
        tags=tags,
        metadata=metadata,
        input_preview=(
            input_preview(source_in.input_text, [i for i in (session_id, user_id) if i])
            if source_in
            else None
        ),
        output_preview=source_out.output_preview if source_out else None,
        context_use=context,
    )


def roll_up_session(session_id: str, traces: Sequence[TraceRollup]) -> SessionRollup:
    """The rollup of one session from all of its traces (at least one).

    Duration is wall-clock (last end - first start), not the sum of the traces;
    ``error_count`` counts the traces that failed.
    """
    by_start = sorted(traces, key=_trace_order)
    first = by_start[0]
    # Nothing counted yet, but the first trace's times, which move neither the earliest
    # start nor the latest end.
    nothing = SessionRollup.empty(session_id, first.start_ns, first.end_ns)
    return _added(nothing, by_start)


def merge_session(stored: SessionRollup, later: Sequence[TraceRollup]) -> SessionRollup | None:
    """``stored`` with traces added that it does not count yet, when each of them starts
    after the end of every trace it counts: then the result is what ``roll_up_session``
    gives over all the traces, without reading the stored ones. None otherwise (a turn
    that arrives late, or overlaps the session's last): the caller rolls the session
    up from all of its traces.

    Every trace of ``later`` must be new to the session: a trace it already counts has
    to be rolled up again with the rest, not added twice.
    """
    if not later or min(t.start_ns for t in later) <= stored.end_ns:
        return None
    return _added(stored, sorted(later, key=_trace_order))


def _added(base: SessionRollup, by_start: Sequence[TraceRollup]) -> SessionRollup:
    """``base`` with the traces ``by_start`` added, every one of which sorts after all
    that ``base`` counts. Costs are summed in start order: float sums then come out the
    same to the last bit, whether a session was rolled up at once or turn by turn."""
    user_ids = list(base.user_ids)
    for trace in by_start:
        if trace.user_id and trace.user_id not in user_ids:
            user_ids.append(trace.user_id)
    return SessionRollup(
        session_id=base.session_id,
        trace_count=base.trace_count + len(by_start),
        span_count=base.span_count + sum(t.span_count for t in by_start),
        start_ns=base.start_ns,
        end_ns=max(base.end_ns, *(t.end_ns for t in by_start)),
        input_tokens=base.input_tokens + sum(t.input_tokens for t in by_start),
        output_tokens=base.output_tokens + sum(t.output_tokens for t in by_start),
        total_tokens=base.total_tokens + sum(t.total_tokens for t in by_start),
        cost_usd=_sum_known([base.cost_usd, *(t.cost_usd for t in by_start)]),
        error_count=base.error_count + sum(1 for t in by_start if t.status == "error"),
        user_ids=user_ids,
        first_input=base.first_input
        or next((t.input_preview for t in by_start if t.input_preview), None),
        last_output=next(
            (t.output_preview for t in reversed(by_start) if t.output_preview),
            base.last_output,
        ),
        peak_context_use=max_known([base.peak_context_use, *(t.context_use for t in by_start)]),
    )


def _trace_order(trace: TraceRollup) -> tuple[int, str]:
    return trace.start_ns, trace.trace_id


def _start_order(span: SpanFacts) -> tuple[int, str]:
    return span.start_ns, span.span_id


def _root(by_start: Sequence[F]) -> F:
    """The span without a parent; until it arrives, the earliest orphan stands in."""
    for span in by_start:
        if span.parent_span_id is None:
            return span
    ids = {s.span_id for s in by_start}
    for span in by_start:
        if span.parent_span_id not in ids:
            return span
    return by_start[0]


def _larger(a: float | None, b: float | None) -> float | None:
    return b if a is None or (b is not None and b > a) else a


def max_known(values: Iterable[float | None]) -> float | None:
    """The largest of the known values; None when none is known."""
    largest: float | None = None
    for value in values:
        largest = _larger(largest, value)
    return largest


def _sum_known(values: Iterable[float | None]) -> float | None:
    """Sum of the known values; None when none is known (unknown is not free)."""
    total: float | None = None
    for value in values:
        if value is not None:
            total = value if total is None else total + value
    return total
