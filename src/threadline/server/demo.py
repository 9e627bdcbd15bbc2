"""``threadline demo``: chat sessions of several turns, sent like a real app sends them.

Spans are made with OpenTelemetry's SDK and shipped by its OTLP/HTTP exporter, so the
demo also shows that any OpenTelemetry app can report to Threadline. Times are laid out
over the last hour, with idle gaps between turns, as a real conversation has.
"""

from __future__ import annotations

import json
import random
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode, set_span_in_context
from tqdm import tqdm

from threadline import semconv

_QUESTIONS = [
    "Where is my order #{n}?",
    "Can I change the delivery address to {city}?",
    "What is your refund policy for opened items?",
    "Do you ship to {city}?",
    "My package arrived damaged, what now?",
    "How do I reset my password?",
    "Which plan includes priority support?",
    "Can you summarise our conversation so far?",
]
_CITIES = ["Lisbon", "Osaka", "Nairobi", "Montréal", "Tallinn", "Valparaíso"]
_USERS = ["ana", "kenji", "wanjiru", "louis", "kadri", "matías"]
_MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest"]


def run_demo(base_url: str, api_key: str, *, sessions: int = 12, seed: int = 7) -> None:
    rng = random.Random(seed)
    provider = TracerProvider(resource=Resource.create({"service.name": "threadline-demo"}))
    exporter = OTLPSpanExporter(
        endpoint=base_url.rstrip("/") + "/v1/traces",
        headers={"Authorization": f"Bearer {api_key}"},
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("threadline.demo")
    now = time.time_ns()
    turns_total = 0
    for index in tqdm(range(sessions), desc="sessions", unit="session"):
        session_id = f"chat-{seed}-{index:03d}"
        user = rng.choice(_USERS)
        clock = now - rng.randint(5, 60) * 60 * 10**9
        for turn in range(rng.randint(2, 6)):
            clock = _turn(tracer, rng, session_id, user, turn, clock)
            clock += rng.randint(5, 90) * 10**9  # the user reads, thinks and types
            turns_total += 1
    provider.force_flush()
    provider.shutdown()
    print(f"Sent {sessions} sessions, {turns_total} turns to {base_url}.")


def _turn(tracer, rng: random.Random, session_id: str, user: str, turn: int, clock: int) -> int:
    question = rng.choice(_QUESTIONS).format(n=rng.randint(1000, 9999), city=rng.choice(_CITIES))
    model = rng.choice(_MODELS)
    root = tracer.start_span("handle_turn", start_time=clock)
    root.set_attributes(
        {
            semconv.SESSION_ID: session_id,
            semconv.USER_ID: user,
            semconv.SPAN_INPUT: json.dumps({"message": question}),
            semconv.METADATA_PREFIX + "turn": turn,
            semconv.TAGS: ["demo", "support-bot"],
        }
    )
    context = set_span_in_context(root)
    t = clock + rng.randint(2, 20) * 10**6

    tool = tracer.start_span("lookup_order", context=context, start_time=t)
    tool.set_attributes(
        {
            semconv.SPAN_TYPE: "TOOL",
            semconv.SPAN_INPUT: json.dumps({"query": question}),
            semconv.SPAN_OUTPUT: json.dumps({"status": rng.choice(["shipped", "pending"])}),
        }
    )
    t += rng.randint(20, 300) * 10**6
    failed = rng.random() < 0.08
    if failed:
        tool.set_status(Status(StatusCode.ERROR, "order service timed out"))
        tool.add_event(
            "exception",
            {"exception.type": "TimeoutError", "exception.message": "order service timed out"},
            timestamp=t,
        )
    tool.end(end_time=t)

    answer = (
        "Sorry, I could not reach the order service. Please try again in a minute."
        if failed
        else f"Thanks for asking! {rng.choice(['It ships tomorrow.', 'Yes, we can.', 'Done.'])}"
    )
    llm = tracer.start_span("chat " + model, context=context, start_time=t)
    input_tokens, output_tokens = rng.randint(150, 1500), rng.randint(20, 400)
    llm.set_attributes(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.input.messages": json.dumps(
                [
                    {"role": "system", "content": "You are a helpful support agent."},
                    {"role": "user", "content": question},
                ]
            ),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": answer}]),
        }
    )
    t += rng.randint(300, 4000) * 10**6
    llm.end(end_time=t)

    root.set_attribute(semconv.SPAN_OUTPUT, json.dumps({"reply": answer}))
    if failed:
        root.set_status(Status(StatusCode.ERROR, "tool failed"))
    end = t + rng.randint(1, 10) * 10**6
    root.end(end_time=end)
    return end
