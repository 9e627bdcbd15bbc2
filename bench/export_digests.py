"""Does a change to the export keep its output byte for byte? A digest of each export.

    PYTHONPATH=/path/to/one/version/src python bench/export_digests.py /tmp/digests-store

Fills a SQLite store (once: a later run on the same folder reuses it, so that two
versions read the same rows) with spans of varied shapes: payloads that are JSON, text,
packed, NaN, nested past the API's bound or taken from an attribute; events, resources,
metadata, tags, scores, costs, times with nanoseconds. Then runs every export in
process (``export.sessions`` and ``export.traces``, each format, with and without
spans) and prints the sha256 and size of each: run it with each version's sources first
on the path and compare the lines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

from threadline.server import export
from threadline.server.model import ScoreRecord, SessionQuery, SpanRecord, TraceQuery
from threadline.server.store.sqlite import SQLiteStore

T0 = 1_790_000_000_000_000_000
PAYLOADS = [
    None,
    "",
    '""',
    "42",
    "plain text, not JSON: é ✓ \t tab",
    '{"messages": [{"role": "user", "content": "héllo \\u00e9 ✓"}]}',
    '  {"spaced" : [1, 2.50, 1E5, 12345678901234567890123] }  ',
    '{"nan": NaN}',
    "[" * 70 + "]" * 70,
    "x" * 3000,
    json.dumps({"k": "v" * 2000, "n": [1, 2.5, None, True]}),
    '{"lone": "\\ud800"}',
    "null",
    "-0.0",
    # More than 64 brackets but shallow: re-written (as ``get_trace`` does), not passed on.
    json.dumps({"rows": [[i] for i in range(40)]}),
    '{"text": "' + "[{" * 40 + '"}',
    '{"no square brackets": "' + "{" * 3 + '", "n": 1}',
]


def _spans(rng: random.Random, sessions: int) -> list[SpanRecord]:
    spans: list[SpanRecord] = []
    for s in range(sessions):
        # The first session is longer than the export's batch of traces (export.TRACE_BATCH).
        for t in range(rng.randint(1, 4) if s else 60):
            trace = f"{rng.getrandbits(128):032x}"
            start = T0 + s * 10**9 + t * 7 * 10**8 + rng.randint(0, 999)
            for n in range(rng.randint(1, 6)):
                payload_in = rng.choice(PAYLOADS)
                payload_out = rng.choice(PAYLOADS)
                from_attribute = n == 2 and isinstance(payload_in, str)
                attributes: dict = {"n": n, "f": rng.random(), "big": 2**70, "s": "é"}
                if from_attribute:
                    attributes["threadline.span.input"] = payload_in
                spans.append(
                    SpanRecord(
                        trace_id=trace,
                        span_id=f"{rng.getrandbits(63):016x}",
                        parent_span_id=None if n == 0 else f"{n:016x}",
                        name=f"span-{n}" if n % 3 else 'tab\tand "quote" é\x01',
                        kind="INTERNAL",
                        start_ns=start + n * 1_234_567 + rng.randint(0, 5) * 10**6,
                        end_ns=start + n * 1_234_567 + rng.randint(6, 10**9),
                        status="error" if rng.random() < 0.1 else "ok",
                        status_message="boom" if rng.random() < 0.05 else None,
                        input=payload_in,
                        output=payload_out,
                        input_source="threadline.span.input" if from_attribute else None,
                        model=rng.choice([None, "gpt-4o-mini", "claude"]),
                        input_tokens=rng.choice([None, 12, 5000]),
                        output_tokens=rng.choice([None, 3, 700]),
                        total_tokens=rng.choice([None, 15, 5700]),
                        cost_usd=rng.choice([None, 0.1, 1e-7, rng.random() / 1000]),
                        attributes=attributes if rng.random() < 0.8 else {},
                        events=[
                            {
                                "name": "e",
                                "time_ns": start + rng.randint(0, 10**9),
                                "attributes": {"k": n, "x": float("nan")},
                            }
                        ]
                        if rng.random() < 0.2
                        else [],
                        resource={"service.name": "svc", "n": n} if rng.random() < 0.5 else {},
                        session_id=f"session-{s:05d}" if n == 0 else None,
                        user_id=f"user-{s % 7}" if n == 0 else None,
                        metadata={"big": 2**70, "f": 1.5, "l": [1, None]} if s % 3 == 0 else {},
                        tags=["b", "a"] if s % 4 == 0 else [],
                    )
                )
    return spans


def fill(path: Path, sessions: int) -> None:
    rng = random.Random(5)
    store = SQLiteStore(path)
    project = store.create_project("default").id
    spans = _spans(rng, sessions)
    for i in range(0, len(spans), 2000):
        store.write_spans(project, spans[i : i + 2000])
    traces = sorted({s.trace_id for s in spans})
    store.write_scores(
        project,
        [
            ScoreRecord(
                id=f"q{i}",
                name=rng.choice(["quality", "tone"]),
                data_type="numeric",
                value=rng.random(),
                label=None,
                session_id=None,
                trace_id=trace,
                span_id=None,
                source="api",
                author=None,
                comment=None,
                created_ns=i,
            )
            for i, trace in enumerate(traces[::5])
        ],
    )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--sessions", type=int, default=3000)
    args = parser.parse_args()
    path = args.data_dir / "threadline.db"
    if not path.exists():
        args.data_dir.mkdir(parents=True, exist_ok=True)
        fill(path, args.sessions)
    store = SQLiteStore(path)
    try:
        (project,) = [p for p in store.list_projects() if p.name == "default"]
        sessions = SessionQuery()  # no bounds: all time
        traces = TraceQuery()
        runs = {
            "sessions csv": export.sessions(store, project.id, sessions, "csv", False, 1800),
            "sessions jsonl": export.sessions(store, project.id, sessions, "jsonl", False, 1800),
            "sessions jsonl+spans": export.sessions(
                store, project.id, sessions, "jsonl", True, 1800
            ),
            "traces csv": export.traces(store, project.id, traces, "csv"),
            "traces jsonl": export.traces(store, project.id, traces, "jsonl"),
            "traces jsonl+spans": export.traces(store, project.id, traces, "jsonl", True),
        }
        for label, chunks in runs.items():
            digest = hashlib.sha256()
            size = 0
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
            print(f"{label}: {digest.hexdigest()} {size:,} bytes")
    finally:
        store.close()


if __name__ == "__main__":
    main()
