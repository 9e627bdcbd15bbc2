"""What the vendor programs of these tests do, and how a test runs one.

Every source gets the same small workload: two sessions of two turns each, one user per
session, each turn one trace whose LLM call sends the conversation so far to the fake
OpenAI server. A program is the ``main`` of a test module, run as
``python -m tests.integrations.<module>`` in a subprocess, so that each vendor's global
OpenTelemetry state (tracer provider, instrumentation patches) starts fresh and never
leaks into the test process or another test.

The program learns where to send everything from the environment (``ProgramEnv``); it
must flush its exporter before it exits, so that once the subprocess has exited every
span has been acknowledged by the server, which commits before it acknowledges.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from genai_prices import Usage, calc_price

from tests.integrations.fake_openai import Exchange

REPO = Path(__file__).resolve().parents[2]
MODEL = "gpt-4o-mini"
SYSTEM_PROMPT = "You are a terse support agent."


@dataclass(frozen=True)
class Session:
    suffix: str
    user_id: str
    questions: tuple[str, ...]


SESSIONS = (
    Session("a", "ana", ("My order 1138 has not arrived", "Can you refund it?")),
    Session("b", "bob", ("How do I reset my password?", "It says my link expired")),
)


@dataclass(frozen=True)
class ProgramEnv:
    """What the test hands the program, through environment variables."""

    threadline_url: str  # http://127.0.0.1:PORT
    api_key: str
    openai_url: str  # the fake's base URL, ending in /v1
    run_id: str  # makes this run's session ids unique

    def to_environ(self) -> dict[str, str]:
        return {"TL_TEST_PROGRAM": json.dumps(self.__dict__)}

    @classmethod
    def from_environ(cls) -> ProgramEnv:
        return cls(**json.loads(os.environ["TL_TEST_PROGRAM"]))

    def session_id(self, session: Session) -> str:
        return f"{self.run_id}-{session.suffix}"

    def otlp_exporter(self) -> Any:
        """OpenTelemetry's OTLP/HTTP exporter, sending to the server with the key."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=f"{self.threadline_url}/v1/traces",
            headers={"Authorization": f"Bearer {self.api_key}"},
        )


def history_for(session: Session, index: int, replies: list[str]) -> list[dict[str, str]]:
    """The messages an app sends for turn ``index``: system prompt, earlier turns, question."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for question, reply in zip(session.questions[:index], replies, strict=True):
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]
    messages.append({"role": "user", "content": session.questions[index]})
    return messages


def run_program(module: str, env: ProgramEnv, **extra_env: str) -> str:
    """Run ``tests.integrations.<module>`` to completion; its stdout. Fails the test with
    the program's output if it exits non-zero."""
    environ = {**os.environ, **env.to_environ(), **extra_env}
    # Nothing a developer has exported may send these programs' data elsewhere.
    for name in list(environ):
        if name.startswith("OTEL_EXPORTER_") and name not in extra_env:
            del environ[name]
    done = subprocess.run(
        [sys.executable, "-m", f"tests.integrations.{module}"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"program failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def price(exchange: Exchange, provider: str = "openai") -> float:
    """What genai-prices says the exchange cost (independently of Threadline's pricing)."""
    usage = Usage(
        input_tokens=exchange.usage["prompt_tokens"],
        output_tokens=exchange.usage["completion_tokens"],
    )
    return float(calc_price(usage, exchange.model, provider_id=provider).total_price)


def approx_cost(value: float | None, expected: float | Decimal) -> bool:
    return value is not None and abs(value - float(expected)) < 1e-12


def exchanges_by_session(exchanges: list[Exchange]) -> dict[str, list[Exchange]]:
    """The fake's exchanges, grouped by the session whose questions they asked."""
    grouped: dict[str, list[Exchange]] = {s.suffix: [] for s in SESSIONS}
    for exchange in exchanges:
        asked = exchange.request["messages"][-1]["content"]
        (session,) = [s for s in SESSIONS if asked in s.questions]
        grouped[session.suffix].append(exchange)
    return grouped


def check_sessions(server: Any, env: ProgramEnv, exchanges: list[Exchange]) -> dict[str, list]:
    """What every source must get right, checked through the API: two sessions of two
    traces, each with its user, and tokens and cost equal to what the fake answered.
    Returns each session's traces (details, with spans, in start order)."""
    listed = server.get("/api/v1/sessions")["items"]
    assert sorted(s["session_id"] for s in listed) == sorted(env.session_id(s) for s in SESSIONS)
    grouped = exchanges_by_session(exchanges)
    details: dict[str, list] = {}
    for session in SESSIONS:
        mine = grouped[session.suffix]
        assert len(mine) == len(session.questions)
        found = server.get(f"/api/v1/sessions/{env.session_id(session)}")
        assert found["trace_count"] == len(session.questions)
        assert found["user_ids"] == [session.user_id]
        assert found["input_tokens"] == sum(e.usage["prompt_tokens"] for e in mine)
        assert found["output_tokens"] == sum(e.usage["completion_tokens"] for e in mine)
        assert found["total_tokens"] == sum(e.usage["total_tokens"] for e in mine)
        assert approx_cost(found["cost_usd"], sum(price(e) for e in mine))
        traces = [server.get(f"/api/v1/traces/{t['trace_id']}") for t in found["traces"]]
        for trace, exchange in zip(traces, mine, strict=True):
            assert trace["user_id"] == session.user_id
            (llm,) = [s for s in trace["spans"] if s["span_type"] == "LLM"]
            assert llm["model"] == exchange.model
            assert (llm["input_tokens"], llm["output_tokens"], llm["total_tokens"]) == (
                exchange.usage["prompt_tokens"],
                exchange.usage["completion_tokens"],
                exchange.usage["total_tokens"],
            )
            assert approx_cost(llm["cost_usd"], price(exchange))
        details[session.suffix] = traces
    return details


def llm_span(trace: dict[str, Any]) -> dict[str, Any]:
    (span,) = [s for s in trace["spans"] if s["span_type"] == "LLM"]
    return span


def check_transcripts(traces: dict[str, list], exchanges: list[Exchange]) -> None:
    """``check_transcript`` of every session, its traces as ``check_sessions`` returns
    them, its replies those the fake gave to its questions."""
    grouped = exchanges_by_session(exchanges)
    for session in SESSIONS:
        replies = [e.reply for e in grouped[session.suffix]]
        check_transcript(traces[session.suffix], session, replies)


def check_transcript(traces: list[dict[str, Any]], session: Session, replies: list[str]) -> None:
    """The session page's transcript, built from the API's traces as the page builds
    it: each turn shows only its own question (not the history sent with it) and the
    reply, whichever convention carried the messages."""
    from threadline.server.conversation import Message, turn_messages
    from threadline.server.model import TraceDetail

    for trace, question, reply in zip(traces, session.questions, replies, strict=True):
        said, replied = turn_messages(TraceDetail.model_validate(trace))
        assert said == [Message(role="user", text=question)]
        assert replied == [Message(role="assistant", text=reply)]
