"""Spans for tests, with every field a test does not care about filled in once."""

from __future__ import annotations

from typing import Any

from threadline.server.model import SpanRecord

# 2026-09-21, a recent time with room for years of spans either side.
T0 = 1_790_000_000_000_000_000


def span_record(
    trace: int, span: int, start_ns: int, length_ns: int = 10**6, **fields: Any
) -> SpanRecord:
    """A span whose trace and span ids are ``trace`` and ``span`` written in hex,
    running ``length_ns`` from ``start_ns``: a root named "step", INTERNAL and ok,
    unless ``fields`` (any other ``SpanRecord`` fields) say otherwise."""
    return SpanRecord(
        **{
            "trace_id": f"{trace:032x}",
            "span_id": f"{span:016x}",
            "parent_span_id": None,
            "name": "step",
            "kind": "INTERNAL",
            "start_ns": start_ns,
            "end_ns": start_ns + length_ns,
            "status": "ok",
            **fields,
        }
    )


def trace_member(
    trace: int, span_no: int, start_ns: int, length_ns: int, **fields: Any
) -> SpanRecord:
    """Span ``span_no`` of trace ``trace``: 0 is the root, any other its child (span ids
    ``trace`` and ``span_no`` in 8 hex digits each), named "span-<span_no>", as
    ``span_record`` makes it otherwise."""
    root = trace << 32
    return span_record(
        trace,
        root + span_no,
        start_ns,
        length_ns,
        **{
            "parent_span_id": None if span_no == 0 else f"{root:016x}",
            "name": f"span-{span_no}",
            **fields,
        },
    )
