"""Sessions inferred on ClickHouse, for traces sent without a session id, without
reading back what was written (migration 0012).

The SQLite store links each turn to the stored turns that offer what it asks
(``store/sqlite/inference.py``) and renames a session when an earlier turn lands. Here
two servers may write two turns of one conversation at the same moment, each through a
replica that sees the other's insert seconds later, and a trace's session cannot be
renamed (it is the merge of its spans' ids). So a turn is named by what every turn of
its conversation carries itself (``ingest/session_signals.py``), and the name is
written on its spans before the insert, as if the application had sent it:

- **Thread id**: ``inferred-t-<its key>``.
- **Message history**: ``inferred-h-<the opening's key>``, the digest of the conversation
  up to its first reply, which every later turn resends (the first turn's reply is its
  output). Arrival order, concurrency and lagging replicas cannot split a conversation:
  each turn finds the name alone.
- **Responses chain** (``previous_response_id``, ``inferred-r-<a response's key>``): a
  turn names only its predecessor, so
  this one signal reads: each turn's response ids are stored with its session
  (``response_sessions``), and a turn asking for one takes that session; a turn whose
  predecessor is not (yet) visible is named after the response it asks for, which is
  the first turn's name when it asks for the first turn's response. So the second turn
  always joins the first, and a later turn joins them only if its predecessor's export
  was visible when it was written (turns arriving out of order, or on two servers
  within a replica's lag, may split a chain).

What a trace's spans say is ranked as on SQLite (a thread id, then the Responses chain,
then the history); among its calls' openings, one resent by a later turn wins over one
made of a call's own reply, then the earliest. Only spans that carry signals are named
(a trace's session is its root's id, else its earliest span's), and only when none of
the trace's spans in the export names a session: an explicit id sent with another export
of the trace wins when it rides on the root or on a span that starts before the first
named one. Unlike SQLite, a conversation of one turn is a session of one trace (its name
needs no second turn). The name's letter says which signal grouped it (``signals_of``:
what the lists and the session page show), so marking a session costs no row.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from threadline.server.model import SessionSignals, Signal, SpanRecord

PREFIX = "inferred-"
# The letter of each signal in a session's name.
_LETTER: dict[Signal, str] = {"thread_id": "t", "previous_response_id": "r", "history": "h"}
_SIGNAL = {letter: signal for signal, letter in _LETTER.items()}
_NAME = re.compile(r"inferred-([thr])-[0-9a-f]{32}")
RESPONSES_TABLE = "response_sessions"
RESPONSES_COLUMNS = ["project_id", "response_key", "session_id"]

# The sessions of response keys (hex) stored before, for those of ``keys`` that have one.
LookUp = Callable[[list[str]], dict[str, str]]


@dataclass
class Placement:
    """A batch's spans with their inferred sessions written on, and the rows to insert."""

    spans: list[SpanRecord]
    responses: list[list[object]] = field(default_factory=list)


def name(signal: Signal, key: str) -> str:
    """The session named by ``key`` (hex) of ``signal``."""
    return f"{PREFIX}{_LETTER[signal]}-{key}"


def signals_of(session_id: str) -> list[Signal] | None:
    """The signal that grouped ``session_id`` when it is a name ``place`` gives."""
    found = _NAME.fullmatch(session_id)
    return [_SIGNAL[found.group(1)]] if found else None


def may_place(spans: Sequence[SpanRecord]) -> bool:
    """Whether ``place`` could name a session for any trace of ``spans`` (one with
    signals and no session id of its own), whatever is stored."""
    return bool(_unnamed_traces(spans))


def place_alone(project_id: int, spans: Sequence[SpanRecord]) -> Placement | None:
    """``place`` without reading what is stored (in an ingest worker), or None when a
    name depends on it: a trace without a session id asks for a response that no
    trace of ``spans`` answers (the Responses chain's one read).

    Every other name is a function of the batch alone, and ``place`` names the same
    whether a trace will never have a session id or the one it has not arrived yet (a
    later export bringing its root): the explicit id wins in the trace's merge then,
    and the name given here is a session the trace leaves, as it would be had the
    writer placed it."""
    try:
        return place(project_id, spans, _needs_store)
    except _NeedsStore:
        return None


class _NeedsStore(Exception):
    """``place`` asked for what is stored: the batch is left to the writer."""


def _needs_store(keys: list[str]) -> dict[str, str]:
    # ``place`` asks exactly when a trace asks for a response the batch does not
    # answer: one pass over the batch decides, rather than a pass to test and another
    # to place.
    raise _NeedsStore


def _unnamed_traces(spans: Sequence[SpanRecord]) -> dict[str, list[SpanRecord]]:
    """The spans with signals of each trace that names no session, each trace's by start."""
    by_trace: dict[str, list[SpanRecord]] = defaultdict(list)
    explicit: set[str] = set()
    for span in spans:
        if span.session_id:
            explicit.add(span.trace_id)
        elif span.session_signals is not None:
            by_trace[span.trace_id].append(span)
    return {
        trace_id: sorted(found, key=lambda s: (s.start_ns, s.span_id))
        for trace_id, found in by_trace.items()
        if trace_id not in explicit
    }


def place(project_id: int, spans: Sequence[SpanRecord], look_up: LookUp) -> Placement:
    """Name the inferred session of each trace of ``spans`` that carries signals and no
    session id; ``look_up`` is called once, for the Responses keys the batch cannot
    answer itself."""
    traces = _unnamed_traces(spans)
    if not traces:
        return Placement(list(spans))
    # Traces in the order they started, so a turn's predecessor in the batch comes first.
    ordered = sorted(traces.items(), key=lambda item: (item[1][0].start_ns, item[0]))
    asked = _asked_responses([found for _, found in ordered])
    stored = look_up(sorted(asked)) if asked else {}
    chosen: dict[str, tuple[str, Signal]] = {}
    answered: dict[str, str] = {}
    for trace_id, found in ordered:
        signals = [s.session_signals for s in found if s.session_signals is not None]
        picked = _choose(signals, answered, stored)
        if picked is None:
            continue
        chosen[trace_id] = picked
        for own in _own_responses(signals):
            answered[own] = picked[0]
    placement = Placement(
        [
            replace(span, session_id=chosen[span.trace_id][0])
            if span.session_signals is not None
            and span.session_id is None
            and span.trace_id in chosen
            else span
            for span in spans
        ]
    )
    placement.responses = [
        [project_id, key, session_id] for key, session_id in sorted(answered.items())
    ]
    return placement


def _choose(
    signals: list[SessionSignals], answered: dict[str, str], stored: dict[str, str]
) -> tuple[str, Signal] | None:
    thread = next((s.thread for s in signals if s.thread), None)
    if thread:
        return name("thread_id", thread.hex()), "thread_id"
    own = _own_responses(signals)
    previous = [
        s.previous_response.hex()
        for s in signals
        if s.previous_response and s.previous_response.hex() not in own
    ]
    if previous:
        key = previous[0]
        found = answered.get(key) or stored.get(key)
        return found or name("previous_response_id", key), "previous_response_id"
    if own:
        return name("previous_response_id", own[0]), "previous_response_id"
    opening = next((s.opening for s in signals if s.opening and s.opening_resent), None) or next(
        (s.opening for s in signals if s.opening), None
    )
    return (name("history", opening.hex()), "history") if opening else None


def _own_responses(signals: list[SessionSignals]) -> list[str]:
    return list(dict.fromkeys(s.response.hex() for s in signals if s.response))


def _asked_responses(traces: list[list[SpanRecord]]) -> set[str]:
    """The previous-response keys of the batch's traces that no trace of it answers."""
    own: set[str] = set()
    asked: set[str] = set()
    for found in traces:
        for span in found:
            signals = span.session_signals
            assert signals is not None
            if signals.response:
                own.add(signals.response.hex())
            if signals.previous_response:
                asked.add(signals.previous_response.hex())
    return asked - own
