"""An export's body travels to the worker in the pieces it arrived in and is joined
there into a buffer the worker keeps (``ingest/body.py``): every export reads exactly
its own bytes, however the one before it was cut, and prepares as it would whole."""

from __future__ import annotations

import gzip
import random

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.otlp import new_span_id, new_trace_id, request, span, to_json
from threadline.server.errors import BadRequest
from threadline.server.ingest import body as body_module
from threadline.server.ingest.body import KEPT_BYTES, joined
from threadline.server.ingest.decode import JSON, PROTOBUF
from threadline.server.ingest.prepare import Job, Prepared, prepare_export
from threadline.server.redaction.rules import RedactionRules
from threadline.server.settings import Settings


def _cut(data: bytes, rng: random.Random) -> list[bytes]:
    pieces, start = [], 0
    while start < len(data):
        end = start + rng.randint(1, 70_000)
        pieces.append(data[start:end])
        start = end
    return pieces


def test_each_body_reads_its_own_bytes_in_the_kept_buffer() -> None:
    rng = random.Random(7)
    # Large, then small, then middling: a later body must not show the bytes an
    # earlier, longer one left in the buffer.
    for size in (900_000, 1_000, 300_000, 2, 1_500_000):
        data = rng.randbytes(size)
        with joined(_cut(data, rng)) as whole:
            assert bytes(whole) == data
            assert len(whole) == size


def test_the_buffer_is_kept_between_bodies_and_its_view_released_after() -> None:
    rng = random.Random(8)
    with joined(_cut(rng.randbytes(200_000), rng)) as whole:
        assert isinstance(whole, memoryview)
        first = whole.obj
    kept = whole
    with pytest.raises(ValueError):
        kept[0]  # released: nothing reads the buffer after its export
    with joined(_cut(rng.randbytes(100_000), rng)) as whole:
        assert isinstance(whole, memoryview)
        assert whole.obj is first


def test_whole_bodies_single_pieces_and_large_bodies_are_not_copied_into_it() -> None:
    data = b"x" * 10
    with joined(data) as whole:
        assert whole is data
    with joined([data]) as whole:
        assert whole is data
    large = [b"a" * (KEPT_BYTES // 2), b"b" * (KEPT_BYTES // 2 + 1)]
    with joined(large) as whole:
        assert isinstance(whole, bytes)
        assert whole == b"".join(large)
    with joined([]) as whole:
        assert whole == b""


def test_a_failed_export_leaves_the_buffer_usable() -> None:
    rng = random.Random(9)
    with pytest.raises(RuntimeError), joined([b"ab", b"cd"]):
        raise RuntimeError("the export was bad")
    assert not getattr(body_module._local, "busy", False)
    data = rng.randbytes(1_000)
    with joined(_cut(data, rng)) as whole:
        assert bytes(whole) == data


def _export(spans: int) -> ExportTraceServiceRequest:
    trace_id = new_trace_id()
    return request(
        span(
            trace_id,
            new_span_id(),
            name=f"step {i}",
            attributes={
                "threadline.span.input": "a question " * 50,
                "gen_ai.usage.input_tokens": i,
            },
        )
        for i in range(spans)
    )


@pytest.mark.parametrize("kind", [PROTOBUF, JSON])
@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_an_export_in_pieces_prepares_as_it_does_whole(kind: str, encoding: str | None) -> None:
    message = _export(300)
    data = message.SerializeToString() if kind == PROTOBUF else to_json(message)
    if encoding == "gzip":
        data = gzip.compress(data)
    job = Job(Settings(), 1, RedactionRules(), None)
    whole = prepare_export(job, data, kind, encoding)
    in_pieces = prepare_export(job, _cut(data, random.Random(1)), kind, encoding)
    assert isinstance(whole, Prepared) and isinstance(in_pieces, Prepared)
    assert len(whole.normalized.spans) == 300
    assert [repr(r) for r in in_pieces.normalized.spans] == [
        repr(r) for r in whole.normalized.spans
    ]


def test_a_bad_body_in_pieces_is_refused_as_whole() -> None:
    job = Job(Settings(), 1, RedactionRules(), None)
    with pytest.raises(BadRequest):
        prepare_export(job, [b"\xff\xff", b"\xff\xff\xff"], PROTOBUF, None)
    with pytest.raises(BadRequest):
        prepare_export(job, [b'{"resourceSpans": ', b"[}"], JSON, None)
