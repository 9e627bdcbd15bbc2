"""What the benchmarks that fill a store straight through ``write_spans`` share: random
ids, the spans of an agent's turn (a root span, then model calls and tool calls in
turn), and writing a stream of spans in batches."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from threadline.server.model import SpanRecord
from threadline.server.store.sqlite import SQLiteStore

MS = 1_000_000
T0 = 1_790_000_000_000_000_000


def trace_id(rng: random.Random) -> str:
    return rng.getrandbits(128).to_bytes(16, "big").hex()


def span_id(rng: random.Random) -> str:
    return rng.getrandbits(63).to_bytes(8, "big").hex()


def turn_root(
    trace: str, root: str, start: int, session_id: str, user_id: str, said: str, replied: str
) -> SpanRecord:
    """A turn's root span (2 s long), carrying the session and the user."""
    return SpanRecord(
        trace_id=trace,
        span_id=root,
        parent_span_id=None,
        name="handle_turn",
        kind="SERVER",
        start_ns=start,
        end_ns=start + 2000 * MS,
        status="ok",
        input=said,
        output=replied,
        session_id=session_id,
        user_id=user_id,
    )


def turn_step(
    rng: random.Random,
    trace: str,
    root: str,
    start: int,
    step: int,
    tool: str,
    payloads: tuple[str, str],
) -> SpanRecord:
    """Step ``step`` of a turn under its root: a gpt-4o-mini call on even steps (500 + 50
    tokens), else a call of ``tool``; 100 ms each, one after the other."""
    llm = step % 2 == 0
    return SpanRecord(
        trace_id=trace,
        span_id=span_id(rng),
        parent_span_id=root,
        name="chat gpt-4o-mini" if llm else tool,
        kind="CLIENT",
        start_ns=start + (step + 1) * 100 * MS,
        end_ns=start + (step + 2) * 100 * MS,
        status="ok",
        span_type="LLM" if llm else "TOOL",
        model="gpt-4o-mini" if llm else None,
        input_tokens=500 if llm else None,
        output_tokens=50 if llm else None,
        total_tokens=550 if llm else None,
        cost_usd=0.000105 if llm else None,
        input=payloads[0],
        output=payloads[1],
    )


def write_spans(path: Path, spans: Iterable[SpanRecord], batch: int = 5000) -> None:
    """Write ``spans`` into project ``default`` of a SQLite store at ``path``, ``batch``
    to a transaction."""
    store = SQLiteStore(path)
    project = store.create_project("default").id
    pending: list[SpanRecord] = []
    for span in spans:
        pending.append(span)
        if len(pending) >= batch:
            store.write_spans(project, pending)
            pending = []
    if pending:
        store.write_spans(project, pending)
    store.close()
