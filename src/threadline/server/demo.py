"""``threadline demo``: chat sessions of several turns, sent like a real app sends them.

Spans are made with OpenTelemetry's SDK and shipped by its OTLP/HTTP exporter, so the
demo also shows that any OpenTelemetry app can report to Threadline. Times are laid out
over the last hour, with idle gaps between turns, as a real conversation has.
"""

from __future__ import annotations

import json
import random
import secrets
import time
import urllib.error
import urllib.request
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, Tracer, set_span_in_context
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


class DemoFailed(Exception):
    """The server refused the demo's spans or could not be reached; the message says
    which and what to change."""


def run_demo(base_url: str, api_key: str, *, sessions: int = 12, seed: int = 7) -> str:
    """Send ``sessions`` chat sessions, one export per session, and return a summary once
    the server has acknowledged every export. Raises ``DemoFailed``.

    Each run's session ids are new (``chat-<run>-NNN``), so a second run adds sessions
    beside the first instead of adding turns to the same conversations; ``seed`` picks
    the same users, questions and timings each time.
    """
    endpoint = base_url.rstrip("/") + "/v1/traces"
    check_server(endpoint, api_key)
    rng = random.Random(seed)
    run = secrets.token_hex(3)
    # Spans are collected in memory and exported a session at a time by the demo itself,
    # so the bar moves only when the server has acknowledged an export.
    finished = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "threadline-demo"}))
    provider.add_span_processor(SimpleSpanProcessor(finished))
    tracer = provider.get_tracer("threadline.demo")
    exporter = OTLPSpanExporter(
        endpoint=endpoint, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
    )
    now = time.time_ns()
    turns_total = 0
    try:
        with tqdm(total=sessions, desc="sessions acknowledged", unit="session") as bar:
            for index in range(sessions):
                session_id = f"chat-{run}-{index:03d}"
                user = rng.choice(_USERS)
                clock = now - rng.randint(5, 60) * 60 * 10**9
                for turn in range(rng.randint(2, 6)):
                    clock = _turn(tracer, rng, session_id, user, turn, clock)
                    clock += rng.randint(5, 90) * 10**9  # the user reads, thinks and types
                    turns_total += 1
                spans = finished.get_finished_spans()
                finished.clear()
                if exporter.export(spans) is not SpanExportResult.SUCCESS:
                    raise DemoFailed(
                        f"the server at {base_url} did not acknowledge session {index + 1} of "
                        f"{sessions} ({index} were acknowledged); see the exporter's error above"
                    )
                bar.update(1)
    finally:
        exporter.shutdown()
        provider.shutdown()
    return (
        f"Sent {sessions} sessions, {turns_total} turns to {base_url}, every export "
        f"acknowledged (session ids chat-{run}-000 to chat-{run}-{sessions - 1:03d})."
    )


def check_server(endpoint: str, api_key: str) -> None:
    """An empty export, so a wrong address or key fails at once with a clear reason
    rather than after the exporter's retries."""
    request = urllib.request.Request(
        endpoint,
        data=b"",
        method="POST",
        headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {api_key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            return
    except urllib.error.HTTPError as answer:
        status, detail = answer.code, _error_text(answer)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DemoFailed(
            f"cannot reach a server at {endpoint} ({reason}). Is `threadline serve` running "
            "there? Give its address with --base-url or THREADLINE_BASE_URL."
        ) from None
    if status == 401:
        raise DemoFailed(
            f"the server at {endpoint} refused the API key ({detail}). Give the key "
            "`threadline serve` printed with --api-key or THREADLINE_API_KEY."
        )
    if status == 403:
        raise DemoFailed(f"the server at {endpoint} refused the key: {detail}")
    raise DemoFailed(f"the server at {endpoint} answered {status}: {detail}")


def _error_text(answer: urllib.error.HTTPError) -> str:
    try:
        body: Any = json.loads(answer.read() or b"{}")
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    return str(error or answer.reason)


def _turn(
    tracer: Tracer, rng: random.Random, session_id: str, user: str, turn: int, clock: int
) -> int:
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
