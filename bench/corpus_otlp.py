"""``payload_corpus.py``'s chats of real text as ready-to-send OTLP protobuf bodies.

    batches = corpus_otlp.batches(20_000, 512)   # workload.Batch, as workload.batches

``workload.py``'s spans say random windows of a 70-word vocabulary; these say real text
(the standard library's functions, JSON documents, documentation paragraphs) in chats
that resend their history, as an application instrumented with an SDK sends them:

- a trace per LLM call of a session (a chat turn): a root span (``handle_turn``) with
  the session and user, the turn's user message as its input and the reply as its
  output, as ``@observe`` records a function's arguments and result;
- the LLM call under it, as the GenAI conventions send it: the whole conversation so far
  (system prompt and every earlier turn) in ``gen_ai.input.messages``, the reply in
  ``gen_ai.output.messages``, model and token counts;
- in the documentation application's turns, a retrieval tool span before the call
  (``search_docs``: the question as its query, the paragraphs the prompt quotes as its
  result); in the operators' assistant's, a tool span after it (``run_command``: a
  paragraph of documentation as the command's output). Other turns have none.

Sessions are interleaved as ``workload.batches`` interleaves them (50 at a time, turn by
turn), so a session's traces arrive in different exports. Seeded: the same spans every
run on the same machine (the text is what ``payload_corpus`` finds installed here).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import payload_corpus
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from workload import START_NS, Batch, _span, genai_chat, in_batches

_CONCURRENT_SESSIONS = 50
_MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest")
_DOCS_APP, _OPS_APP = 2, 3  # payload_corpus.Corpus's applications with tool spans
# A word many of this corpus's traces say (its prose is English documentation): a search
# for it finds traces only where the index was written.
PROBE_WORD = "the"


def _ids(rng: random.Random, count: int) -> tuple[bytes, list[bytes]]:
    trace_id = rng.getrandbits(128).to_bytes(16, "big")
    return trace_id, [(rng.getrandbits(63) + 1).to_bytes(8, "big") for _ in range(count)]


def _retrieved(asked: str) -> tuple[str, list[str]]:
    """The question and the quoted paragraphs of a documentation turn's user message,
    which ``Corpus.turn`` writes as ``Context:\\n<paragraphs>\\n\\nQuestion: <question>?``."""
    context, _, question = asked.removeprefix("Context:\n").rpartition("\n\nQuestion: ")
    return question.removesuffix("?"), context.split("\n\n---\n\n")


def trace_spans(
    rng: random.Random,
    corpus: payload_corpus.Corpus,
    app: int,
    call: tuple[str, str],
    session_id: str,
    user_id: str,
    start: int,
) -> list[Span]:
    """One LLM call of a session as the spans of one trace (root first)."""
    history_json, reply_json = call
    asked = json.loads(history_json)[-1]["content"]
    said = json.loads(reply_json)[0]["content"]
    trace_id, ids = _ids(rng, 3)
    root = ids[0]
    spans: list[Span] = []
    t = start + 1_000_000
    if app == _DOCS_APP:
        question, paragraphs = _retrieved(asked)
        took = rng.randint(20, 200) * 1_000_000
        spans.append(
            _span(
                trace_id,
                ids[2],
                root,
                "search_docs",
                t,
                t + took,
                {
                    "threadline.span.type": "TOOL",
                    "threadline.span.input": json.dumps({"query": question}),
                    "threadline.span.output": json.dumps({"documents": paragraphs}),
                },
            )
        )
        t += took
    model = rng.choice(_MODELS)
    took = rng.randint(300, 4000) * 1_000_000
    input_tokens, output_tokens = len(history_json) // 4, len(reply_json) // 4
    spans.append(
        _span(
            trace_id,
            ids[1],
            root,
            f"chat {model}",
            t,
            t + took,
            genai_chat(model, input_tokens, output_tokens, history_json, reply_json),
        )
    )
    t += took
    if app == _OPS_APP:
        took = rng.randint(5, 500) * 1_000_000
        spans.append(
            _span(
                trace_id,
                ids[2],
                root,
                "run_command",
                t,
                t + took,
                {
                    "threadline.span.type": "TOOL",
                    "threadline.span.input": json.dumps({"command": said.split("\n")[0][:200]}),
                    "threadline.span.output": json.dumps({"stdout": corpus.pick(corpus.prose)}),
                },
            )
        )
        t += took
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
                "threadline.session.id": session_id,
                "threadline.user.id": user_id,
                "threadline.span.input": json.dumps({"message": asked}),
                "threadline.span.output": json.dumps({"reply": said}),
            },
        ),
    )
    return spans


def _sessions(corpus: payload_corpus.Corpus) -> Iterator[tuple[int, list[tuple[str, str]]]]:
    """``Corpus.sessions``, each with its application (known by its system prompt)."""
    for calls in corpus.sessions():
        system = json.loads(calls[0][0])[0]["content"]
        yield corpus.system.index(system), calls


def batches(
    total_spans: int,
    batch_spans: int = 512,
    seed: int = 1,
    start_ns: int = START_NS,
    tag: str = "corpus",
) -> Iterator[Batch]:
    """At least ``total_spans`` spans (whole traces) as OTLP bodies of ``batch_spans``
    spans, sessions interleaved as ``workload.batches`` interleaves them."""
    corpus = payload_corpus.Corpus(seed)
    rng = random.Random(seed)
    sessions = _sessions(corpus)

    def traces() -> Iterator[tuple[str, list[Span]]]:
        made = 0
        number = 0
        while made < total_spans:
            group = []
            for _ in range(_CONCURRENT_SESSIONS):
                group.append((number, *next(sessions)))
                number += 1
            for turn in range(max(len(calls) for _, _, calls in group)):
                for s, app, calls in group:
                    if turn >= len(calls) or made >= total_spans:
                        continue
                    session_id = f"{tag}-{s:07d}"
                    clock = start_ns + s * 10**9 + turn * 60 * 10**9
                    spans = trace_spans(
                        rng, corpus, app, calls[turn], session_id, f"user-{s % 997}", clock
                    )
                    made += len(spans)
                    yield session_id, spans

    yield from in_batches(traces(), batch_spans)
