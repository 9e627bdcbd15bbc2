"""What keeping GenAI log events costs ingest, per model call, in process, without HTTP.

    python bench/log_events_cost.py --calls 2048 --repeat 5

A model call of OpenTelemetry's OpenAI instrumentor is a ``chat`` span (model, usage,
no messages) and, with content capture on, three log events (system, user, choice).
Three ways for its messages to reach the server, each on the same calls:

- ``no messages``: the span alone (what the server kept before it kept events);
- ``on the span``: the span carrying ``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` (what Threadline's SDK processor, or an app, puts there);
- ``as events``: the span alone, and the events in a logs export of their own, arriving
  first (the usual order): the worker's logs job (decode, pick, redact nothing,
  encode), the writer's commit of the events (SQLite, with the look-up of each span),
  the waiting events pickled into the span export's job, the worker's spans job with
  them (the join, then everything a span with messages costs), the writer's commit of
  the spans and its settling of the index.

``--waiting N`` puts N more spans' events in the project's index beside each export's
own (events whose spans never come, or come later): the whole index travels with every
span export's job, up to ``MAX_WAITING_SPANS`` (5,000) spans. The index's own step
(``server: index``) adds an export's events to one index, as the server keeps it,
takes the job's copy and settles the export's spans.

Prints CPU microseconds a call for each step (process CPU, best of ``--repeat``, the
arms alternated A B C C B A), in exports of 512 spans and 1,536 events as the SDKs'
batch processors send them. A benchmark, not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import functools
import json
import pickle
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from threadline.server.ingest.decode import PROTOBUF
from threadline.server.ingest.prepare import Job, Prepared, prepare_export, prepare_log_export
from threadline.server.ingest.tuning import tune_garbage_collector
from threadline.server.ingest.waiting_events import WaitingEvents
from threadline.server.redaction.rules import RedactionRules
from threadline.server.settings import Settings
from threadline.server.store.base import SpanBatch
from threadline.server.store.sqlite import SQLiteStore

BATCH = 512
T0 = 1_790_000_000 * 10**9
SYSTEM = "You are a terse support agent for an online shop. Answer in one sentence."


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _call_texts(n: int) -> tuple[str, str]:
    question = f"Where is my order {1000 + n}? It was due on Monday and has not arrived."
    reply = f"Order {1000 + n} left the warehouse on Tuesday and arrives within two days."
    return question, reply


def spans_export(first: int, with_messages: bool) -> bytes:
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.append(_kv("service.name", "support-bot"))
    scope = resource.scope_spans.add()
    scope.scope.name = "opentelemetry.instrumentation.openai_v2"
    for n in range(first, first + BATCH):
        span: Span = scope.spans.add(
            trace_id=(n + 1).to_bytes(16, "big"),
            span_id=(n + 1).to_bytes(8, "big"),
            name="chat gpt-4o-mini",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=T0 + n * 10**9,
            end_time_unix_nano=T0 + n * 10**9 + 800_000_000,
        )
        span.attributes.extend(
            _kv(k, v)
            for k, v in {
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.response.id": f"chatcmpl-{n}",
                "gen_ai.response.finish_reasons": "stop",
                "gen_ai.usage.input_tokens": 42,
                "gen_ai.usage.output_tokens": 17,
                "server.address": "api.openai.com",
            }.items()
        )
        if with_messages:
            question, reply = _call_texts(n)
            sent = [
                {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
                {"role": "user", "parts": [{"type": "text", "content": question}]},
            ]
            said = [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": reply}],
                    "finish_reason": "stop",
                }
            ]
            span.attributes.append(_kv("gen_ai.input.messages", json.dumps(sent)))
            span.attributes.append(_kv("gen_ai.output.messages", json.dumps(said)))
    return request.SerializeToString()


def _body(**fields: str) -> AnyValue:
    value = AnyValue()
    for key, text in fields.items():
        value.kvlist_value.values.append(_kv(key, text))
    return value


def logs_export(first: int) -> bytes:
    request = ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    for n in range(first, first + BATCH):
        question, reply = _call_texts(n)
        ids = {"trace_id": (n + 1).to_bytes(16, "big"), "span_id": (n + 1).to_bytes(8, "big")}
        at = T0 + n * 10**9
        scope.log_records.add(
            event_name="gen_ai.system.message", time_unix_nano=at, body=_body(content=SYSTEM), **ids
        )
        scope.log_records.add(
            event_name="gen_ai.user.message", time_unix_nano=at, body=_body(content=question), **ids
        )
        choice = AnyValue()
        choice.kvlist_value.values.append(_kv("finish_reason", "stop"))
        choice.kvlist_value.values.append(
            KeyValue(key="message", value=_body(role="assistant", content=reply))
        )
        choice.kvlist_value.values.append(_kv("index", 0))
        scope.log_records.add(
            event_name="gen_ai.choice", time_unix_nano=at + 800_000_000, body=choice, **ids
        )
    return request.SerializeToString()


def _best(repeat: int, work: Callable[[], object]) -> float:
    """The least CPU ``work`` took (or, when it returns a float, said it took)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        said = work()
        took = said if isinstance(said, float) else time.process_time() - started
        best = min(best, took)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--waiting", type=int, default=0)
    args = parser.parse_args()
    tune_garbage_collector()
    settings = Settings()
    firsts = range(0, args.calls, BATCH)
    calls = len(firsts) * BATCH
    bare = [spans_export(f, False) for f in firsts]
    rich = [spans_export(f, True) for f in firsts]
    logs = [logs_export(f) for f in firsts]
    rules = RedactionRules()

    with tempfile.TemporaryDirectory() as tmp:
        n = 0

        def fresh_store() -> tuple[SQLiteStore, int]:
            nonlocal n
            n += 1
            store = SQLiteStore(Path(tmp) / f"cost{n}.db")
            return store, store.create_project("bench").id

        # Each store's payload dictionary trained by a first export, as in a server.
        def spans_job(store: SQLiteStore, project: int, waiting=None) -> Job:
            return Job(settings, project, rules, store.span_preparer(), waiting)

        def worker_spans(bodies: list[bytes], waiting_of: Callable[[int], object]) -> Callable:
            store, project = fresh_store()
            prepare_export(spans_job(store, project), bare[0], PROTOBUF, None)
            preparer = store.span_preparer()
            store.close()

            def run() -> list:
                out = []
                for index, body in enumerate(bodies):
                    job = Job(settings, project, rules, preparer, waiting_of(index))  # type: ignore[arg-type]
                    out.append(prepare_export(job, body, PROTOBUF, None))
                return out

            return run

        logs_job = Job(settings, 1, rules, None)
        events = [prepare_log_export(logs_job, b, PROTOBUF, None) for b in logs]
        # Spans that never come: ids past every call's.
        others = [
            e
            for first in range(0, args.waiting, BATCH)
            for e in prepare_log_export(logs_job, logs_export(10**9 + first), PROTOBUF, None)
        ]
        others = [e for e in others if int(e.span_id, 16) <= 10**9 + args.waiting]

        # One index, as the server keeps: each export's events added, its job's copy
        # taken, its spans settled (the others stay, as their spans never come).
        index = WaitingEvents(900)
        index.add(1, others)

        def indexes() -> list:
            made = []
            for batch in events:
                index.add(1, batch)
                made.append(index.snapshot(1))
                keys = {(e.trace_id, e.span_id) for e in batch}
                assert index.settle(1, keys, dict.fromkeys(keys, 3)) == []
            return made

        snapshots = indexes()

        pickled_jobs = [pickle.dumps(Job(settings, 1, rules, None, s)) for s in snapshots]

        def commit(prepared_of: Callable[[], list], with_events: bool) -> Callable[[], float]:
            def run() -> float:
                store, project = fresh_store()  # its making (migrations) not counted
                answers = prepared_of()
                started = time.process_time()
                try:
                    if with_events:
                        waiting = WaitingEvents(900)
                        for batch in events:
                            left = store.write_genai_events(project, batch)
                            waiting.add(project, left)
                    for prepared in answers:
                        assert isinstance(prepared, Prepared)
                        store.write_span_batches(
                            [SpanBatch(project, prepared.normalized.spans, prepared.for_store)]
                        )
                        if with_events:
                            keys = ((s.trace_id, s.span_id) for s in prepared.normalized.spans)
                            assert waiting.settle(project, keys, prepared.joined) == []
                    return time.process_time() - started
                finally:
                    store.close()

            return run

        worker_bare = worker_spans(bare, lambda i: None)
        worker_rich = worker_spans(rich, lambda i: None)
        worker_joined = worker_spans(bare, lambda i: snapshots[i])
        answers = {
            "no messages": worker_bare(),
            "on the span": worker_rich(),
            "as events": worker_joined(),
        }
        steps: dict[str, dict[str, Callable[[], object]]] = {
            "no messages": {"worker: spans": worker_bare},
            "on the span": {"worker: spans": worker_rich},
            "as events": {
                "worker: logs": lambda: [
                    prepare_log_export(logs_job, b, PROTOBUF, None) for b in logs
                ],
                "server: index": indexes,
                "server: job pickled": lambda: [
                    pickle.dumps(Job(settings, 1, rules, None, s)) for s in snapshots
                ],
                "worker: job loaded": lambda: [pickle.loads(p) for p in pickled_jobs],
                "worker: spans": worker_joined,
            },
        }
        # The writer: spans (and events) committed on a fresh store, the worker's
        # answers made once beforehand (their CPU is counted above).
        for arm, with_events in (
            ("no messages", False),
            ("on the span", False),
            ("as events", True),
        ):
            steps[arm]["writer: commit"] = commit(
                functools.partial(list, answers[arm]), with_events
            )
        order = ["no messages", "on the span", "as events"]
        order = order + order[::-1]
        best: dict[tuple[str, str], float] = {}
        for arm in order:
            for step, work in steps[arm].items():
                took = _best(args.repeat, work)
                best[(arm, step)] = min(best.get((arm, step), float("inf")), took)
    per_call = {k: v / calls * 1e6 for k, v in best.items()}
    for arm in order[:3]:
        total = sum(v for (a, _), v in per_call.items() if a == arm)
        parts = ", ".join(f"{s} {v:.1f}" for (a, s), v in per_call.items() if a == arm)
        print(f"{arm:12s} {total:7.1f} µs a call  ({parts})")
    print(
        f"calls {calls}, exports of {BATCH} spans and {3 * BATCH} events,"
        f" {args.waiting} other spans' events waiting"
    )


if __name__ == "__main__":
    main()
