"""A deterministic LLM-application workload as ready-to-send OTLP protobuf bodies.

Shape (the benchmark's target workload): 10 spans per trace, 5 traces per session, ~4 KB of protobuf
per span. Each trace is one chat turn: a root span with the session and user, LLM spans
with 1-3 KB prompts and 1-2.5 KB completions and token counts, tool and retrieval spans.
Text is drawn from a small vocabulary so it compresses like real prose, not like noise.

``flavour`` picks the attribute keys: ``"threadline"`` (the default: Threadline's own
and OpenTelemetry GenAI keys) or ``"openinference"`` (``session.id``, ``user.id``,
``input.value``/``output.value``, ``openinference.span.kind``, ``llm.model_name``,
``llm.token_count.*``: keys Arize Phoenix reads and Threadline maps too). Both flavours
draw the same random numbers, so ids, texts and sizes match.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

SPANS_PER_TRACE = 10
TRACES_PER_SESSION = 5
_WORDS = (
    "order refund shipping address customer account payment invoice delivery tracking "
    "warehouse package damaged replacement subscription plan support priority policy "
    "the a to of and for with your our we you is are was be can will please thanks "
    "today tomorrow week days hours minutes status update confirm cancel change help"
).split()
_MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest")
_TOOLS = ("lookup_order", "search_kb", "update_address")
FLAVOURS = ("threadline", "openinference")
START_NS = 1_790_000_000_000_000_000  # the first trace's start: 2026-09-21


@dataclass(frozen=True)
class Batch:
    body: bytes
    spans: int
    session_ids: tuple[str, ...]


def _corpus(size: int = 1 << 20) -> str:
    rng = random.Random(0)
    return " ".join(rng.choice(_WORDS) for _ in range(size // 5))


# Texts are windows into one fixed stream of random words: drawing word by word made
# generating the workload slower than ingesting it, which kept the scale curve short.
_CORPUS = _corpus()


def _text(rng: random.Random, size: int) -> str:
    start = _CORPUS.find(" ", rng.randrange(len(_CORPUS) - size - 64)) + 1
    end = _CORPUS.find(" ", start + size)
    return _CORPUS[start:end]


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _span(
    trace_id: bytes,
    span_id: bytes,
    parent: bytes,
    name: str,
    start: int,
    end: int,
    attributes: dict[str, object],
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=[_kv(k, v) for k, v in attributes.items()],
    )


def trace_spans(
    rng: random.Random, session_id: str, user_id: str, start: int, flavour: str = "threadline"
) -> list[Span]:
    """One chat turn: 10 spans."""
    oi = flavour == "openinference"
    trace_id = rng.getrandbits(128).to_bytes(16, "big")
    ids = [(rng.getrandbits(63) + 1).to_bytes(8, "big") for _ in range(SPANS_PER_TRACE)]
    root = ids[0]
    question = _text(rng, rng.randint(200, 800))
    spans: list[Span] = []
    t = start + 1_000_000
    for index in range(1, SPANS_PER_TRACE):
        length = rng.randint(5, 900) * 1_000_000
        if index % 2 == 1:  # 5 LLM calls
            model = rng.choice(_MODELS)
            prompt = [
                {"role": "system", "content": _text(rng, 600)},
                {"role": "user", "content": _text(rng, rng.randint(1000, 3000))},
            ]
            completion = [{"role": "assistant", "content": _text(rng, rng.randint(800, 2500))}]
            input_tokens, output_tokens = rng.randint(200, 2500), rng.randint(50, 600)
            attributes: dict[str, object] = (
                {
                    "openinference.span.kind": "LLM",
                    "llm.provider": "openai" if model.startswith("gpt") else "anthropic",
                    "llm.model_name": model,
                    "llm.token_count.prompt": input_tokens,
                    "llm.token_count.completion": output_tokens,
                    "llm.token_count.total": input_tokens + output_tokens,
                    "input.value": json.dumps({"messages": prompt}),
                    "input.mime_type": "application/json",
                    "output.value": json.dumps({"messages": completion}),
                    "output.mime_type": "application/json",
                }
                if oi
                else genai_chat(
                    model, input_tokens, output_tokens, json.dumps(prompt), json.dumps(completion)
                )
            )
            name = f"chat {model}"
        else:  # 4 tool calls
            name = rng.choice(_TOOLS)
            tool_input = json.dumps({"query": _text(rng, 400)})
            tool_output = json.dumps({"result": _text(rng, rng.randint(1500, 4000))})
            attributes = (
                {
                    "openinference.span.kind": "TOOL",
                    "tool.name": name,
                    "input.value": tool_input,
                    "input.mime_type": "application/json",
                    "output.value": tool_output,
                    "output.mime_type": "application/json",
                }
                if oi
                else {
                    "threadline.span.type": "TOOL",
                    "threadline.span.input": tool_input,
                    "threadline.span.output": tool_output,
                }
            )
        spans.append(_span(trace_id, ids[index], root, name, t, t + length, attributes))
        t += length
    turn_input = json.dumps({"message": question})
    turn_output = json.dumps({"reply": _text(rng, 800)})
    spans.insert(
        0,
        _span(
            trace_id,
            root,
            b"",
            "handle_turn",
            start,
            t + 1_000_000,
            {
                "openinference.span.kind": "CHAIN",
                "session.id": session_id,
                "user.id": user_id,
                "input.value": turn_input,
                "input.mime_type": "application/json",
                "output.value": turn_output,
                "output.mime_type": "application/json",
            }
            if oi
            else {
                "threadline.session.id": session_id,
                "threadline.user.id": user_id,
                "threadline.span.input": turn_input,
                "threadline.span.output": turn_output,
            },
        ),
    )
    return spans


def batches(
    total_spans: int,
    batch_spans: int = 512,
    seed: int = 1,
    start_ns: int = START_NS,
    tag: str = "bench",
    flavour: str = "threadline",
) -> Iterator[Batch]:
    """``total_spans`` spans (a multiple of 50) as OTLP bodies of ``batch_spans`` spans.

    ``flavour`` is ``"threadline"`` (default) or ``"openinference"`` (see the module).

    Sessions are interleaved as in a live system: many conversations at once, so the
    traces of one session arrive in different exports.
    """
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}, not {flavour!r}")
    rng = random.Random(seed)
    sessions = total_spans // (SPANS_PER_TRACE * TRACES_PER_SESSION)
    concurrent = 50

    def traces() -> Iterator[tuple[str, list[Span]]]:
        for group in range(0, sessions, concurrent):
            members = range(group, min(group + concurrent, sessions))
            for turn in range(TRACES_PER_SESSION):
                for s in members:
                    session_id = f"{tag}-{s:07d}"
                    clock = start_ns + s * 10**9 + turn * 60 * 10**9
                    yield (
                        session_id,
                        trace_spans(rng, session_id, f"user-{s % 997}", clock, flavour),
                    )

    yield from in_batches(traces(), batch_spans)


def genai_chat(
    model: str, input_tokens: int, output_tokens: int, input_messages: str, output_messages: str
) -> dict[str, object]:
    """An LLM call's attributes in the GenAI conventions (messages as JSON text)."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai" if model.startswith("gpt") else "anthropic",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
        "gen_ai.input.messages": input_messages,
        "gen_ai.output.messages": output_messages,
    }


def in_batches(
    traces: Iterable[tuple[str | None, list[Span]]], batch_spans: int
) -> Iterator[Batch]:
    """Traces, each with its session id (None: none sent), in the order they happen, as
    exports of ``batch_spans`` spans (the last one shorter): a trace may be split between
    two."""
    pending: list[Span] = []
    pending_sessions: set[str] = set()
    for session_id, spans in traces:
        pending += spans
        if session_id is not None:
            pending_sessions.add(session_id)
        while len(pending) >= batch_spans:
            yield _batch(pending[:batch_spans], pending_sessions)
            pending = pending[batch_spans:]
            pending_sessions = set()
    if pending:
        yield _batch(pending, pending_sessions)


def _batch(spans: list[Span], sessions: set[str]) -> Batch:
    scope = ScopeSpans(spans=spans)
    scope.scope.name = "bench"
    resource = ResourceSpans(scope_spans=[scope])
    resource.resource.attributes.append(_kv("service.name", "bench-chat-app"))
    body = ExportTraceServiceRequest(resource_spans=[resource]).SerializeToString()
    return Batch(body, len(spans), tuple(sorted(sessions)))
