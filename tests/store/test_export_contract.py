"""The bulk export's reads, on every backend: a trace's detail as JSON
(``trace_details_json``, made from rows without pydantic on SQLite) is the document
``get_trace`` gives, whatever the payloads hold, and a session's trace ids come in the
order of its detail."""

from __future__ import annotations

import json
from dataclasses import replace

from tests.store import test_contract
from tests.store.test_contract import record
from threadline.server.model import ScoreRecord
from threadline.server.store import Store

backend = test_contract.backend
store = test_contract.store

DEEP = "[" * 70 + "]" * 70  # deeper than the API's bound: shown as text
PAYLOADS = [
    '{"messages": [{"role": "user", "content": "héllo \\u00e9 ✓"}]}',
    "plain text, not JSON",
    '  {"spaced" : [1, 2.50, 1E5, 12345678901234567890123] }  ',
    DEEP,
    '{"nan": NaN}',  # json takes it, orjson does not
    "42",
    '""',
    "",
    "x" * 3000,  # packed (zstd) on SQLite
    json.dumps({"k": "v" * 2000}),
]


def _spans():
    spans = []
    for n, payload in enumerate(PAYLOADS, start=1):
        spans.append(
            record(
                n,
                100 + n,
                start=n * 10,
                session="s-export" if n % 2 else "s-other",
                input=payload,
                output=PAYLOADS[-n],
                attributes={"a": 1, "big": 2**70, "list": ["x", 1.5], "text": payload},
                events=[
                    {"name": "e", "time_ns": 1_790_000_000_000_000_000 + n, "attributes": {"k": n}}
                ]
                if n % 3 == 0
                else [],
                resource={"service.name": "svc", "n": n} if n % 2 else {},
                tokens=(n, n) if n % 4 else None,
                cost=0.001 * n if n % 5 else None,
            )
        )
        spans.append(record(n, 200 + n, 100 + n, start=n * 10 + 1))
    # Spans whose ids run against their start times, two starting together: the
    # document lists them by (start, id), not in the order the store keeps them.
    for span, start in ((0x30, 70), (0x20, 71), (0x10, 71)):
        spans.append(
            replace(
                record(
                    77,
                    span,
                    None if span == 0x30 else 0x30,
                    start=start,
                    session="s-export",
                    user="u-\u00e9",
                    metadata={"big": 2**70, "f": 1.5, "nested": {"l": [1, None]}},
                    tags=["b", "a"],
                ),
                name='tab\tand "quote" \u00e9\x01',
            )
        )
    # Texts with every kind of character JSON escapes, and counts near 64 bits (SQLite
    # hands a span's short columns over as one JSON array).
    awkward = "".join(map(chr, range(0x20))) + '\\ " / \x7f \u2028 \u2029 é ✓ \U0001f600'
    spans.append(
        replace(
            record(88, 888, start=8, session="s-export", error=True, tokens=(2**61, 2**61)),
            name=awkward,
            status_message=awkward,
            model=awkward,
        )
    )
    # Inputs and outputs kept once, from the attribute they came from.
    spans.append(
        record(
            99,
            999,
            start=5,
            session="s-export",
            input='{"from": "attribute"}',
            output="out text",
            input_source="threadline.span.input",
            output_source="threadline.span.output",
            attributes={
                "threadline.span.input": '{"from": "attribute"}',
                "threadline.span.output": "out text",
                "z": "last",
            },
        )
    )
    return spans


def test_trace_details_json_is_get_traces_document(store: Store):
    project = store.create_project("p").id
    spans = _spans()
    store.write_spans(project, spans)
    trace_ids = sorted({s.trace_id for s in spans})
    store.write_scores(
        project,
        [
            ScoreRecord(
                id="q1",
                name="quality",
                data_type="numeric",
                value=0.5,
                label=None,
                session_id=None,
                trace_id=trace_ids[0],
                span_id=None,
                source="api",
                author=None,
                comment=None,
                created_ns=1,
            )
        ],
    )
    found = store.trace_details_json(project, [*trace_ids, "f" * 32, trace_ids[0]])
    assert sorted(found) == trace_ids  # unknown ids left out, repeats once
    for trace_id in trace_ids:
        detail = store.get_trace(project, trace_id)
        assert detail is not None
        assert json.loads(found[trace_id]) == json.loads(detail.model_dump_json()), trace_id


def test_session_trace_ids_follow_the_session_detail(store: Store):
    project = store.create_project("p").id
    store.write_spans(project, _spans())
    members = store.session_trace_ids(project, ["s-export", "s-other", "s-none"])
    assert set(members) == {"s-export", "s-other"}
    for session_id, ids in members.items():
        detail = store.get_session(project, session_id)
        assert detail is not None
        assert ids == [t.trace_id for t in detail.traces]
