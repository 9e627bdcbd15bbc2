"""A large trace's rollup, kept by a writer so that adding spans to it does not read
back every span it already has.

``roll_up_trace`` (rollups.py) needs all of a trace's spans, and a store that has
written a trace before reads them back: for a trace of 100,000 spans, adding one took
0.5 s against 0.04 s. A ``TraceTally`` keeps what the rules read of the spans counted so
far, each chosen value with the start order of the span it came from, so that new
spans can be added exactly as ``roll_up_trace`` over all of them would count them:

- sums and counts (tokens, errors, spans), the earliest start and the latest end;
- the session and user of the earliest span carrying one (the root's, when it has one);
- each metadata key in the order of its first appearance, with the value of its last;
  each tag in the order of its first appearance;
- every known cost, in start order: costs are summed in that order, and a float sum
  depends on it, so the sum is done again over the kept costs (floats only, no read);
- the spans whose input and output stand for the trace's (the root's, else the
  earliest input and the latest-ending output): the whole input, whose preview
  depends on the trace's session and user ids (``previews.py``), so it is made again
  whenever spans are added.

It gives up (``add`` returns False, and the caller reads the trace back) when the rules
need what it did not keep: the trace has no real root yet (the stand-in root is the
earliest span whose parent has not arrived, which a new span may change), or a new span
has no parent (it may become the root). A property test holds ``add`` to
``roll_up_trace`` over all spans.
"""

from __future__ import annotations

from bisect import insort
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from threadline.server.context_window import context_use
from threadline.server.previews import input_preview
from threadline.server.store.rollups import (
    SpanFacts,
    TraceRollup,
    _root,
    _start_order,
    _sum_known,
    max_known,
    roll_up_trace,
)

_Order = tuple[int, str]  # a span's place in start order: (start_ns, span_id)


@dataclass(slots=True)
class _Chosen:
    """A value chosen by a rule, and the start order of the span it came from."""

    order: _Order
    value: Any


@dataclass(slots=True)
class TraceTally:
    rollup: TraceRollup
    root_order: _Order
    root_session: str | None
    root_user: str | None
    root_has_input: bool
    root_has_output: bool
    root_input: str | None  # the root's whole input, if it has one
    session: _Chosen | None = None  # earliest span carrying a session id
    user: _Chosen | None = None
    metadata_first: dict[str, tuple[_Order, int]] = field(default_factory=dict)
    metadata_last: dict[str, _Chosen] = field(default_factory=dict)
    tags_first: dict[str, tuple[_Order, int]] = field(default_factory=dict)
    costs: list[tuple[_Order, float]] = field(default_factory=list)
    first_input: _Chosen | None = None  # earliest span with an input: its whole input
    last_output: tuple[int, _Order, str | None] | None = None  # (end, order, preview)

    @classmethod
    def of(cls, trace_id: str, spans: Sequence[SpanFacts]) -> TraceTally | None:
        """The tally of a trace from all of its spans; None if it has no real root yet
        (see the module). The spans that stand for the trace's input and output must
        carry their input text and output preview, as for ``roll_up_trace``."""
        by_start = sorted(spans, key=_start_order)
        root = _root(by_start)
        if root.parent_span_id is not None:
            return None
        tally = cls(
            rollup=roll_up_trace(trace_id, by_start),
            root_order=_start_order(root),
            root_session=root.session_id,
            root_user=root.user_id,
            root_has_input=root.has_input,
            root_has_output=root.has_output,
            root_input=root.input_text if root.has_input else None,
        )
        for span in by_start:
            tally._note(span)
        return tally

    def add(self, spans: Sequence[SpanFacts]) -> bool:
        """Count ``spans``, all new to the trace (none of them counted before, no two
        the same), as ``roll_up_trace`` over all spans would. False, changing nothing,
        if the rules need what the tally did not keep: the caller rolls the trace up
        again from all of its spans."""
        if any(span.parent_span_id is None for span in spans):
            return False
        for span in sorted(spans, key=_start_order):
            self._note(span)
            self._count(span)
        self._choose()
        return True

    def _note(self, span: SpanFacts) -> None:
        """Keep what the order-dependent rules read of ``span``."""
        order = _start_order(span)
        if span.session_id and (self.session is None or order < self.session.order):
            self.session = _Chosen(order, span.session_id)
        if span.user_id and (self.user is None or order < self.user.order):
            self.user = _Chosen(order, span.user_id)
        for position, (key, value) in enumerate(span.metadata.items()):
            first = self.metadata_first.get(key)
            if first is None or (order, position) < first:
                self.metadata_first[key] = (order, position)
            last = self.metadata_last.get(key)
            if last is None or order > last.order:
                self.metadata_last[key] = _Chosen(order, value)
        for position, tag in enumerate(span.tags):
            first = self.tags_first.get(tag)
            if first is None or (order, position) < first:
                self.tags_first[tag] = (order, position)
        if span.cost_usd is not None:
            insort(self.costs, (order, span.cost_usd))
        if span.has_input and (self.first_input is None or order < self.first_input.order):
            self.first_input = _Chosen(order, span.input_text)
        if span.has_output:
            # The latest end; of equal ends, the earliest start.
            best = self.last_output
            if (
                best is None
                or span.end_ns > best[0]
                or (span.end_ns == best[0] and order < best[1])
            ):
                self.last_output = (span.end_ns, order, span.output_preview)

    def _count(self, span: SpanFacts) -> None:
        rollup = self.rollup
        rollup.span_count += 1
        rollup.start_ns = min(rollup.start_ns, span.start_ns)
        rollup.end_ns = max(rollup.end_ns, span.end_ns)
        if span.is_error:
            rollup.error_count += 1
        if span.input_tokens:
            rollup.input_tokens += span.input_tokens
        if span.output_tokens:
            rollup.output_tokens += span.output_tokens
        if span.total_tokens:
            rollup.total_tokens += span.total_tokens
        if span.input_tokens and span.model:
            rollup.context_use = max_known(
                [rollup.context_use, context_use(span.model, span.input_tokens)]
            )

    def _choose(self) -> None:
        """The rollup's chosen values from what is kept (the root does not change)."""
        rollup = self.rollup
        rollup.session_id = self.root_session or (self.session.value if self.session else None)
        rollup.user_id = self.root_user or (self.user.value if self.user else None)
        rollup.metadata = {
            key: self.metadata_last[key].value
            for key in sorted(self.metadata_first, key=self.metadata_first.__getitem__)
        }
        rollup.tags = sorted(self.tags_first, key=self.tags_first.__getitem__)
        rollup.cost_usd = _sum_known(cost for _, cost in self.costs)
        rollup.status = "error" if rollup.error_count else "ok"
        source = None if self.root_has_input else self.first_input
        if self.root_has_input or source is not None:
            text = self.root_input if source is None else source.value
            ids = [i for i in (rollup.session_id, rollup.user_id) if i]
            rollup.input_preview = input_preview(text, ids)
        if not self.root_has_output:
            rollup.output_preview = self.last_output[2] if self.last_output else None


# Traces of fewer spans are read back: that is quick, and a tally costs memory.
TALLY_FROM_SPANS = 1_000
_MAX_TALLIES = 32
_MAX_COSTS = 500_000  # costs kept over all tallies (~100 bytes each)


class TallyCache:
    """The tallies of a writer's largest recent traces, least recently used out first.

    A tally is only right while nobody else has written its trace (another worker
    process, or a deletion): it is used only while its rollup equals the stored one
    (spans are only ever added, so any other write changes at least the span count),
    and the caller forgets the tallies of a transaction that did not commit.
    """

    def __init__(self) -> None:
        self._tallies: OrderedDict[tuple[int, str], TraceTally] = OrderedDict()

    def get(self, project_id: int, stored: TraceRollup) -> TraceTally | None:
        """The tally of the trace whose stored rollup is ``stored``, if it is current."""
        key = (project_id, stored.trace_id)
        tally = self._tallies.get(key)
        if tally is None:
            return None
        if tally.rollup != stored:  # written by another process since, or deleted
            del self._tallies[key]
            return None
        self._tallies.move_to_end(key)
        return tally

    def keep(self, project_id: int, tally: TraceTally) -> None:
        self._tallies[(project_id, tally.rollup.trace_id)] = tally
        self._tallies.move_to_end((project_id, tally.rollup.trace_id))
        costs = sum(len(t.costs) for t in self._tallies.values())
        while len(self._tallies) > _MAX_TALLIES or (costs > _MAX_COSTS and self._tallies):
            _, dropped = self._tallies.popitem(last=False)
            costs -= len(dropped.costs)

    def forget(self, project_id: int, trace_ids: Iterable[str]) -> None:
        for trace_id in trace_ids:
            self._tallies.pop((project_id, trace_id), None)
