"""The pure rules of ``store/rollups.py``: a trace's rollup whatever order its spans
come in, and ``merge_session`` against ``roll_up_session`` (a session's next turns,
added to its stored rollup, give exactly what rolling it up from all of its traces
gives); and ``TraceTally`` against ``roll_up_trace`` (spans added to a large trace's
tally give exactly the rollup of all of its spans)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from threadline.server.store.rollups import (
    StoredSpanFacts,
    TraceRollup,
    merge_session,
    roll_up_session,
    roll_up_trace,
)
from threadline.server.store.trace_tally import TraceTally

MS = 1_000_000


def _span(span_id: int, parent: int | None, start: int, end: int, **fields) -> StoredSpanFacts:
    defaults = {
        "is_error": False,
        "input_tokens": None,
        "output_tokens": None,
        "total_tokens": None,
        "cost_usd": None,
        "session_id": None,
        "user_id": None,
        "metadata": {},
        "tags": [],
        "has_input": False,
        "has_output": False,
    }
    return StoredSpanFacts(
        span_id=f"{span_id:016x}",
        parent_span_id=None if parent is None else f"{parent:016x}",
        name=f"span-{span_id}",
        start_ns=start,
        end_ns=end,
        **(defaults | fields),
    )


@given(st.permutations(range(6)))
def test_a_trace_rolls_up_the_same_whatever_order_its_spans_come_in(order: list[int]):
    spans = [
        _span(1, None, 0, 100, input_tokens=3, session_id="", has_input=False),
        _span(
            2,
            1,
            10,
            90,
            has_output=True,
            output_preview="ends at 90, starts at 10",
            cost_usd=0.1,
            tags=["a"],
            metadata={"k": 1},
        ),
        _span(
            3,
            1,
            20,
            90,
            has_output=True,
            output_preview="ends at 90, starts at 20",
            cost_usd=0.2,
            tags=["b", "a"],
            metadata={"k": 2},
            session_id="s",
        ),
        _span(
            4,
            1,
            30,
            40,
            has_input=True,
            input_text="first input",
            is_error=True,
            user_id="u",
            total_tokens=7,
            cost_usd=0.3,
        ),
        _span(5, 1, 50, 60, has_input=True, input_text="later input", session_id="t"),
        _span(6, 1, 70, 80, has_output=True, output_preview="ends earlier", tags=["c"]),
    ]
    rollup = roll_up_trace("t", [spans[i] for i in order])
    assert (rollup.name, rollup.start_ns, rollup.end_ns) == ("span-1", 0, 100)
    # The root's session is empty: the earliest span that carries one gives it.
    assert (rollup.session_id, rollup.user_id) == ("s", "u")
    assert (rollup.span_count, rollup.error_count, rollup.status) == (6, 1, "error")
    assert (rollup.input_tokens, rollup.output_tokens, rollup.total_tokens) == (3, 0, 7)
    assert rollup.cost_usd == (0.1 + 0.2) + 0.3  # summed in start order, to the last bit
    assert (rollup.tags, rollup.metadata) == (["a", "b", "c"], {"k": 2})
    assert rollup.input_preview == "first input"
    assert rollup.output_preview == "ends at 90, starts at 10"  # the latest end, then start


@st.composite
def conversations(draw: st.DrawFn) -> list[TraceRollup]:
    """Turns one after another, some overlapping the turn before (a late or parallel
    one), with every field the session rollup reads drawn, edge values included."""
    traces = []
    clock = 0
    for index in range(draw(st.integers(1, 12))):
        # Negative: the turn starts before the previous one ended.
        clock += draw(st.integers(-50, 200)) * MS
        length = draw(st.integers(0, 100)) * MS
        inputs, outputs = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6))
        traces.append(
            TraceRollup(
                trace_id=f"{draw(st.integers(1, 2**128 - 1)):032x}",
                session_id="s",
                user_id=draw(st.sampled_from([None, "u", "v", "w"])),
                name=f"turn-{index}",
                start_ns=clock,
                end_ns=clock + length,
                span_count=draw(st.integers(1, 50)),
                error_count=0,
                input_tokens=inputs,
                output_tokens=outputs,
                total_tokens=inputs + outputs,
                cost_usd=draw(st.none() | st.floats(0, 10, allow_nan=False)),
                status=draw(st.sampled_from(["ok", "error"])),
                input_preview=draw(st.sampled_from([None, "", f"in {index}"])),
                output_preview=draw(st.sampled_from([None, "", f"out {index}"])),
            )
        )
        clock += length
    return traces


@pytest.mark.slow
@given(conversations(), st.integers(1, 11))
def test_next_turns_merge_to_the_rollup_of_all_turns(traces: list[TraceRollup], cut: int):
    cut = min(cut, len(traces) - 1) or 1
    stored, later = traces[:cut], traces[cut:]
    merged = merge_session(roll_up_session("s", stored), later)
    if later and min(t.start_ns for t in later) > max(t.end_ns for t in stored):
        # Equal to the last bit, costs included: both sum in start order.
        assert merged == roll_up_session("s", traces)
    else:
        assert merged is None  # a turn that is not after the rest: counted again


def test_a_session_merges_turn_by_turn():
    turns = [
        TraceRollup(
            trace_id=f"{i:032x}",
            session_id="s",
            user_id=user,
            name="t",
            start_ns=i * 100,
            end_ns=i * 100 + 50,
            span_count=2,
            error_count=0,
            input_tokens=i,
            output_tokens=1,
            total_tokens=i + 1,
            cost_usd=cost,
            status=status,
            input_preview=preview,
            output_preview=preview,
        )
        for i, (user, cost, status, preview) in enumerate(
            [
                (None, None, "ok", None),
                ("u", 0.1, "error", "first"),
                ("v", None, "ok", None),
                ("u", 0.2, "ok", "last"),
            ]
        )
    ]
    rollup = roll_up_session("s", turns[:1])
    for turn in turns[1:]:
        merged = merge_session(rollup, [turn])
        assert merged is not None
        rollup = merged
    assert rollup == roll_up_session("s", turns)
    assert (rollup.user_ids, rollup.first_input, rollup.last_output) == (
        ["u", "v"],
        "first",
        "last",
    )
    assert (rollup.trace_count, rollup.error_count, rollup.span_count) == (4, 1, 8)
    assert rollup.cost_usd == 0.1 + 0.2


@st.composite
def grown_traces(draw: st.DrawFn) -> tuple[list[StoredSpanFacts], list[list[StoredSpanFacts]]]:
    """A trace's spans as first stored, then the batches that add to it: every field
    the trace rollup reads drawn, with ties in start and end times, spans whose parent
    never arrives, and now and then a second span without a parent."""
    count = draw(st.integers(1, 14))
    spans = []
    for index in range(1, count + 1):
        start = draw(st.integers(0, 20)) * MS
        parent = None if index == 1 else draw(st.sampled_from([1, 1, index - 1, 999]))
        if index > 1 and draw(st.integers(0, 15)) == 0:
            parent = None  # a second root
        has_input, has_output = draw(st.booleans()), draw(st.booleans())
        spans.append(
            _span(
                index,
                parent,
                start,
                start + draw(st.integers(0, 20)) * MS,
                is_error=draw(st.booleans()),
                input_tokens=draw(st.none() | st.integers(0, 100)),
                output_tokens=draw(st.none() | st.integers(0, 100)),
                total_tokens=draw(st.none() | st.integers(0, 200)),
                cost_usd=draw(st.none() | st.floats(0, 1, allow_nan=False)),
                session_id=draw(st.sampled_from([None, "", "s", "t"])),
                user_id=draw(st.sampled_from([None, "", "u", "v"])),
                metadata=draw(
                    st.dictionaries(st.sampled_from("abc"), st.integers(0, 3), max_size=3)
                ),
                tags=draw(st.lists(st.sampled_from("xyz"), max_size=3)),
                has_input=has_input,
                has_output=has_output,
                input_text=draw(
                    st.sampled_from([None, f"in {index}", '{"message": "hi", "conversation": "s"}'])
                )
                if has_input
                else None,
                output_preview=f"out {index}" if has_output else None,
            )
        )
    order = draw(st.permutations(range(count)))
    if draw(st.booleans()):  # the usual case: the root is stored first
        order.remove(0)
        order.insert(0, 0)
    cuts = sorted(draw(st.lists(st.integers(1, count), max_size=3)))
    arriving = [spans[i] for i in order]
    parts, last = [], 0
    for cut in [*cuts, count]:
        parts.append(arriving[last:cut])
        last = cut
    return parts[0], [p for p in parts[1:] if p]


# Drawing every field of every span is slow on a busy machine; the examples are not.
@pytest.mark.slow
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(grown_traces())
def test_a_tally_adds_spans_to_the_rollup_of_all_spans(grown) -> None:
    stored, batches = grown
    if not stored:
        return
    tally = TraceTally.of("t", stored)
    if tally is None:  # no real root yet: read back instead
        assert all(s.parent_span_id is not None for s in stored)
        return
    assert tally.rollup == roll_up_trace("t", stored)
    so_far = list(stored)
    for batch in batches:
        if not tally.add(batch):
            assert any(s.parent_span_id is None for s in batch)  # a possible new root
            return
        so_far += batch
        event("spans added to a tally")
        expected = roll_up_trace("t", so_far)
        # Equal to the last bit (costs summed in start order), key order included.
        assert tally.rollup == expected
        assert list(tally.rollup.metadata.items()) == list(expected.metadata.items())


def test_a_tally_adds_one_span_to_a_large_trace() -> None:
    spans = [_span(1, None, 0, 10**6, has_input=True, input_text="q")]
    spans += [
        _span(i, 1, i, i + 5, cost_usd=0.001 * i, has_output=True, output_preview=f"o{i}")
        for i in range(2, 2_000)
    ]
    tally = TraceTally.of("t", spans)
    assert tally is not None
    late = _span(5_000, 1, 7, 10**6, cost_usd=0.5, has_output=True, output_preview="late")
    assert tally.add([late])
    assert tally.rollup == roll_up_trace("t", [*spans, late])
    assert tally.rollup.output_preview == "late"
