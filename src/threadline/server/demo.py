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

# Each question with the reply a support bot would give, and whether it asks the order
# service (the others search the help centre).
_QUESTIONS = [
    (
        "Where is my order #{n}?",
        "Order #{n} left our warehouse yesterday; it arrives on Friday.",
        True,
    ),
    ("Can I change the delivery address to {city}?", "Yes: order #{n} now goes to {city}.", True),
    (
        "What is your refund policy for opened items?",
        "Opened items can be returned within 30 days for a full refund.",
        False,
    ),
    ("Do you ship to {city}?", "Yes, we ship to {city}; delivery takes 3 to 5 days.", False),
    (
        "My package arrived damaged, what now?",
        "Sorry about that! A replacement for order #{n} is on its way; keep the damaged one.",
        True,
    ),
    (
        "How do I reset my password?",
        "Click 'Forgot password' on the sign-in page; the link we send you works for an hour.",
        False,
    ),
    ("Which plan includes priority support?", "The Pro plan and above.", False),
    ("Can you summarise our conversation so far?", None, False),  # a summary of the turns
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
                model = rng.choice(_MODELS)
                clock = now - rng.randint(5, 60) * 60 * 10**9
                history: list[dict[str, str]] = []
                for turn in range(1, rng.randint(2, 6) + 1):
                    clock = _turn(tracer, rng, session_id, user, model, turn, history, clock)
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
    tracer: Tracer,
    rng: random.Random,
    session_id: str,
    user: str,
    model: str,
    turn: int,
    history: list[dict[str, str]],
    clock: int,
) -> int:
    """One turn: a root span, a tool call, and the chat call, which is sent the whole
    conversation so far (as chat apps do) and adds its question and reply to
    ``history``."""
    template, reply, asks_orders = rng.choice(_QUESTIONS)
    n, city = rng.randint(1000, 9999), rng.choice(_CITIES)
    question = template.format(n=n, city=city)
    asked = [m["content"] for m in history if m["role"] == "user"]
    if reply:
        answer = reply.format(n=n, city=city)
    elif asked:
        answer = "So far you asked: " + " / ".join(asked)
    else:
        answer = "We have only just started: how can I help?"
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

    tool = tracer.start_span(
        "lookup_order" if asks_orders else "search_help_center", context=context, start_time=t
    )
    tool.set_attributes(
        {
            semconv.SPAN_TYPE: "TOOL",
            semconv.SPAN_INPUT: json.dumps({"order": n} if asks_orders else {"query": question}),
            semconv.SPAN_OUTPUT: json.dumps(
                {"status": rng.choice(["shipped", "pending"])}
                if asks_orders
                else {"articles": rng.randint(1, 4)}
            ),
        }
    )
    t += rng.randint(20, 300) * 10**6
    failed = asks_orders and rng.random() < 0.15
    if failed:
        tool.set_status(Status(StatusCode.ERROR, "order service timed out"))
        tool.add_event(
            "exception",
            {"exception.type": "TimeoutError", "exception.message": "order service timed out"},
            timestamp=t,
        )
        answer = "Sorry, I could not reach the order service. Please try again in a minute."
    tool.end(end_time=t)

    llm = tracer.start_span("chat " + model, context=context, start_time=t)
    messages = [{"role": "system", "content": "You are a helpful support agent."}]
    messages += [*history, {"role": "user", "content": question}]
    # The whole conversation is sent again each turn: the input grows turn by turn (about
    # four characters a token, beside the app's fixed instructions and tools).
    input_tokens = 400 + sum(len(m["content"]) for m in messages) // 4
    output_tokens = len(answer) // 4 + rng.randint(5, 60)
    llm.set_attributes(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.input.messages": json.dumps(messages),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": answer}]),
        }
    )
    t += rng.randint(300, 4000) * 10**6
    llm.end(end_time=t)

    history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    root.set_attribute(semconv.SPAN_OUTPUT, json.dumps({"reply": answer}))
    if failed:
        root.set_status(Status(StatusCode.ERROR, "tool failed"))
    end = t + rng.randint(1, 10) * 10**6
    root.end(end_time=end)
    return end
