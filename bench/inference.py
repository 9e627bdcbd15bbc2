"""Benchmark inferred sessions: ingest of conversations sent without session ids, with
session inference on and off, on one server.

    python bench/inference.py                    # 3 rounds on, 3 off, 20,000 spans each
    python bench/inference.py --round-spans 20000 --rounds 3

The workload is ``workload.py``'s turn (10 spans: a root, 5 LLM calls, 4 tool calls,
the same text sizes) with no session id anywhere, as a chat app sends it: the turn's
first LLM call is the chat, whose input is the conversation so far (the system prompt,
every earlier question and reply) and the new question; the other four are the app's
own calls (a system prompt and a text each). Conversations take 5 turns; 50 run at
once, interleaved, so a conversation's turns arrive in different exports of 500 spans,
as in a live system.
Every turn after the first therefore finds its conversation by the history prefix, and
the session is added to or created in the write transaction.

The project's setting is switched (``PUT /api/v1/settings/session-inference``) before
each round, in the order on, off, off, on, on, off, ... so that a machine speeding up
or slowing down during the run favours neither, after a warm-up round that is not
counted (the store trains its payload dictionary after its first 500 payloads). Each
round is timed from the first export to every export written (``/healthz?wait``).
Printed: each round's rate, each neighbouring pair's ratio, their median and the
ratio of the medians; then, for the part both sides pay (normalisation computes the
keys either way), the normalisation time of the same exports with and without them.

It is a benchmark, not a test: it prints numbers and fails only if the data is wrong
(with inference on, each round's conversations must be its sessions, 5 turns each).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))
import server as bench_server  # noqa: E402
import workload  # noqa: E402

TURNS = 5
CONCURRENT = 50
BATCH_SPANS = 500
SPANS_PER_CONVERSATION = workload.SPANS_PER_TRACE * TURNS


def turn_spans(
    rng: random.Random, history: list[dict[str, str]], user_id: str, start: int
) -> tuple[list[Span], list[dict[str, str]]]:
    """One turn without a session id, and the conversation so far after it."""
    trace_id = rng.getrandbits(128).to_bytes(16, "big")
    ids = [(rng.getrandbits(63) + 1).to_bytes(8, "big") for _ in range(workload.SPANS_PER_TRACE)]
    question = workload._text(rng, rng.randint(200, 800))
    reply = workload._text(rng, rng.randint(800, 2500))
    spans: list[Span] = []
    t = start + 1_000_000
    for index in range(1, workload.SPANS_PER_TRACE):
        length = rng.randint(5, 900) * 1_000_000
        if index % 2 == 1:  # 5 LLM calls: the chat call, then 4 of the app's own
            model = rng.choice(workload._MODELS)
            if index == 1:
                prompt = [*history, {"role": "user", "content": question}]
                answer = reply
            else:
                prompt = [
                    {"role": "system", "content": workload._text(rng, 600)},
                    {"role": "user", "content": workload._text(rng, rng.randint(1000, 3000))},
                ]
                answer = workload._text(rng, rng.randint(800, 2500))
            attributes: dict[str, object] = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai" if model.startswith("gpt") else "anthropic",
                "gen_ai.request.model": model,
                "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": rng.randint(200, 2500),
                "gen_ai.usage.output_tokens": rng.randint(50, 600),
                "gen_ai.input.messages": json.dumps(prompt),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": answer}]),
            }
            name = f"chat {model}"
        else:  # 4 tool calls
            name = rng.choice(workload._TOOLS)
            attributes = {
                "threadline.span.type": "TOOL",
                "threadline.span.input": json.dumps({"query": workload._text(rng, 400)}),
                "threadline.span.output": json.dumps(
                    {"result": workload._text(rng, rng.randint(1500, 4000))}
                ),
            }
        spans.append(workload._span(trace_id, ids[index], ids[0], name, t, t + length, attributes))
        t += length
    root: dict[str, object] = {
        "threadline.user.id": user_id,
        "threadline.span.input": json.dumps({"message": question}),
        "threadline.span.output": json.dumps({"reply": reply}),
    }
    spans.insert(0, workload._span(trace_id, ids[0], b"", "handle_turn", start, t, root))
    return spans, [
        *history,
        {"role": "user", "content": question},
        {"role": "assistant", "content": reply},
    ]


def round_bodies(conversations: int, seed: int, start_ns: int) -> list[bytes]:
    """``conversations`` conversations of ``TURNS`` turns, ``CONCURRENT`` at a time,
    their turns interleaved, as OTLP bodies of ``BATCH_SPANS`` spans."""
    rng = random.Random(seed)

    def traces() -> Iterator[tuple[None, list[Span]]]:
        for group in range(0, conversations, CONCURRENT):
            members = list(range(group, min(group + CONCURRENT, conversations)))
            histories = {
                c: [{"role": "system", "content": workload._text(rng, 600)}] for c in members
            }
            for turn in range(TURNS):
                for c in members:
                    clock = start_ns + c * 10**9 + turn * 60 * 10**9
                    spans, histories[c] = turn_spans(rng, histories[c], f"user-{c % 97}", clock)
                    yield None, spans  # no session id: the server infers them

    return [batch.body for batch in workload.in_batches(traces(), BATCH_SPANS)]


def normalise_seconds(bodies: list[bytes], with_keys: bool) -> float:
    """CPU time to normalise ``bodies``, with the session keys computed or not."""
    from threadline.server.ingest import normalize

    keep = normalize.span_signals
    if not with_keys:
        normalize.span_signals = lambda record: None
    try:
        requests = [ExportTraceServiceRequest.FromString(body) for body in bodies]
        started = time.process_time()
        for request in requests:
            normalize.normalize_request(request)
        return time.process_time() - started
    finally:
        normalize.span_signals = keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--round-spans", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds on, and as many off")
    parser.add_argument("--senders", type=int, default=4)
    args = parser.parse_args()
    conversations = args.round_spans // SPANS_PER_CONVERSATION
    data_dir = Path(tempfile.mkdtemp(prefix="threadline-bench-inference-"))
    process, base_url, key = bench_server.start_server(data_dir, workers=1)
    rates: dict[bool, list[float]] = {True: [], False: []}
    pairs: list[float] = []
    try:
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as api:
            # A first round, not counted, with inference on: the store trains its payload
            # dictionary after its first 500 payloads, and the first round would pay it.
            for round_number in range(-1, args.rounds * 2):
                on = round_number % 4 in (0, 3, -1)  # (warm-up,) on, off, off, on, on, ...
                response = api.put("/api/v1/settings/session-inference", json={"enabled": on})
                assert response.status_code == 200, response.text
                start_ns = workload.START_NS + round_number * 10**13
                bodies = round_bodies(conversations, 100 + round_number, start_ns)
                sessions_before = _count_sessions(api)
                batches = [workload.Batch(body, 0, ()) for body in bodies]
                result = bench_server.send_all(
                    base_url, {"Authorization": f"Bearer {key}"}, batches, args.senders
                )
                if result.failures:
                    raise SystemExit(f"export failed: {result.failures[:3]}")
                _written(api)
                elapsed = time.perf_counter() - result.started
                rate = conversations * SPANS_PER_CONVERSATION / elapsed
                made = _count_sessions(api) - sessions_before
                if made != (conversations if on else 0):
                    raise SystemExit(f"round {round_number + 1}: {made} sessions inferred")
                if round_number < 0:
                    print(f"warm-up round: {rate:,.0f} spans/s, {made} sessions inferred")
                    continue
                rates[on].append(rate)
                print(
                    f"round {round_number + 1}: inference {'on ' if on else 'off'}"
                    f" {rate:,.0f} spans/s ({elapsed:.2f} s), {made} sessions inferred"
                )
                if round_number % 2 == 1:
                    pairs.append(rates[True][-1] / rates[False][-1])
                    print(f"  pair {len(pairs)}: on / off {pairs[-1]:.1%}")
            if rates[True]:
                _check_sessions(api)
    finally:
        process.terminate()
        process.wait(timeout=30)
    rate_on, rate_off = statistics.median(rates[True]), statistics.median(rates[False])
    print(
        f"ingest: median {rate_on:,.0f} spans/s with inference, {rate_off:,.0f} without:"
        f" {rate_on / rate_off:.1%} of the rate without;"
        f" median of the pairs {statistics.median(pairs):.1%}"
    )
    bodies = round_bodies(conversations, 1, workload.START_NS)
    timings: dict[bool, list[float]] = {True: [], False: []}
    for with_keys in (True, False, False, True, True, False):
        timings[with_keys].append(normalise_seconds(bodies, with_keys))
    spans = conversations * SPANS_PER_CONVERSATION
    keyed, unkeyed = min(timings[True]), min(timings[False])
    print(
        f"normalisation (both sides pay it): {spans / keyed:,.0f} spans/s with the keys,"
        f" {spans / unkeyed:,.0f} without ({(keyed - unkeyed) / spans * 1e6:.1f} µs a span)"
    )


def _written(api: httpx.Client) -> None:
    """Once every export answered is written (the intake queue is empty)."""
    while api.get("/healthz", params={"wait": 60}).json().get("queued_exports") != 0:
        pass


def _count_sessions(api: httpx.Client) -> int:
    count, cursor = 0, None
    while True:
        # All time: the lists default to the last 7 days.
        params: dict[str, str | int | None] = {"limit": 500, "window": "all", "cursor": cursor}
        page = api.get("/api/v1/sessions", params=params).json()
        count += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return count


def _check_sessions(api: httpx.Client) -> None:
    page = api.get("/api/v1/sessions", params={"limit": 500, "window": "all"}).json()["items"]
    wrong = [s["session_id"] for s in page if s["trace_count"] != TURNS or not s["inferred"]]
    if wrong:
        raise SystemExit(f"sessions not of {TURNS} inferred turns: {wrong[:5]}")


if __name__ == "__main__":
    main()
