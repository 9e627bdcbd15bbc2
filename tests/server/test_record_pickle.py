"""A span record as it travels from an ingest worker to the server process: a pickle.

Every field must come back as it went but the parsed messages, which stay in the worker
(the constructor rebuilds the record from its values in order, so a field added,
removed or moved must keep that order true), and
the pickle carries the values only, not a dict of the slots' names (which made it
larger and slower to load: docs/benchmarks.md)."""

from __future__ import annotations

import copy
import pickle
from dataclasses import fields

from threadline.server.model import SessionSignals, SpanRecord


def _every_field_set() -> SpanRecord:
    record = SpanRecord(
        trace_id="ab" * 16,
        span_id="cd" * 8,
        parent_span_id="ef" * 8,
        name="chat",
        kind="CLIENT",
        start_ns=1,
        end_ns=2,
        status="error",
        status_message="boom",
        span_type="LLM",
        input='[{"role":"user","content":"hi"}]',
        output="hello",
        input_source="gen_ai.prompt",
        output_source="gen_ai.completion",
        model="gpt-4o",
        input_tokens=3,
        output_tokens=4,
        total_tokens=7,
        cost_usd=0.5,
        attributes={"a": 1, "b": [1, 2]},
        events=[{"name": "exception", "time_ns": 3, "attributes": {}}],
        resource={"service.name": "svc"},
        scope="scope",
        session_id="s1",
        user_id="u1",
        metadata={"k": "v"},
        tags=["t1"],
        session_signals=SessionSignals(offers=(b"o",), asks=((b"a", "thread"),)),
        input_messages=[{"role": "user", "content": "hi"}],
        output_messages=[{"role": "assistant", "content": "hello"}],
    )
    # A value unlike its default in every field, so a field rebuilt into another's
    # place cannot pass unnoticed.
    defaults = SpanRecord("", "", None, "", "", 0, 0, "ok")
    assert all(getattr(record, f.name) != getattr(defaults, f.name) for f in fields(record))
    return record


def test_a_record_comes_back_from_its_pickle_field_for_field() -> None:
    record = _every_field_set()
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        back = pickle.loads(pickle.dumps(record, protocol=protocol))
        assert back == record
        # The parsed messages stay in the process that parsed them: the text travels.
        assert back.input_messages is None and back.output_messages is None
    assert copy.copy(record) == record
    assert copy.deepcopy(record) == record


def test_a_records_pickle_carries_its_values_not_its_field_names() -> None:
    pickled = pickle.dumps(_every_field_set(), protocol=pickle.HIGHEST_PROTOCOL)
    for name in ("parent_span_id", "status_message", "session_signals", "output_source"):
        assert name.encode() not in pickled
