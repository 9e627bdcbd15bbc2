"""Chat turns as an app without session ids sends them: each turn a root span around one
LLM call in OpenLLMetry's flattened message attributes (``gen_ai.prompt.N.*``,
``gen_ai.completion.N.*``), whose input resends the conversation so far."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from tests.otlp import new_span_id, new_trace_id, span

BASE = 1_700_000_000_000_000_000
SYSTEM = "You are a helpful travel assistant."
MODEL = "gpt-4o-mini"


@dataclass
class Turn:
    conversation: str
    index: int  # 0-based
    trace_id: str
    start_ns: int
    question: str
    reply: str
    input_tokens: int
    output_tokens: int


def conversation(name: str, start_ns: int, turns: int = 3, *, rng: random.Random) -> list[Turn]:
    return [
        Turn(
            conversation=name,
            index=i,
            trace_id=new_trace_id(rng),
            start_ns=start_ns + i * 10_000_000_000,
            question=f"{name} question {i + 1}",
            reply=f"{name} reply {i + 1}",
            input_tokens=100 * (i + 1) + len(name),
            output_tokens=10 + i,
        )
        for i in range(turns)
    ]


def turn_spans(
    turns: list[Turn],
    turn: Turn,
    *,
    session_id: str | None = None,
    history: list[tuple[str, str]] | None = None,
    model: str = MODEL,
    **extra: Any,
):
    """The root span of ``turn`` and its LLM call, whose input is the conversation so far
    (the system prompt, every earlier question and reply, the new question), or
    ``history`` and the new question when given."""
    messages: list[tuple[str, str]] = [("system", SYSTEM)]
    for earlier in turns[: turn.index]:
        messages += [("user", earlier.question), ("assistant", earlier.reply)]
    if history is not None:
        messages = list(history)
    messages.append(("user", turn.question))
    attributes: dict[str, Any] = {
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": turn.input_tokens,
        "gen_ai.usage.output_tokens": turn.output_tokens,
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": turn.reply,
        **extra,
    }
    for i, (role, content) in enumerate(messages):
        attributes[f"gen_ai.prompt.{i}.role"] = role
        attributes[f"gen_ai.prompt.{i}.content"] = content
    root_id = new_span_id()
    root_attributes = {"session.id": session_id} if session_id else {}
    return [
        span(
            turn.trace_id,
            root_id,
            name="chat-turn",
            start_ns=turn.start_ns,
            end_ns=turn.start_ns + 2_000_000_000,
            attributes=root_attributes,
        ),
        span(
            turn.trace_id,
            new_span_id(),
            parent=root_id,
            name="openai.chat",
            start_ns=turn.start_ns + 100_000_000,
            end_ns=turn.start_ns + 1_900_000_000,
            attributes=attributes,
        ),
    ]
