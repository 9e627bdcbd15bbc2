"""What a conversation's context does, turn by turn: how full the model's context window
each turn's LLM call filled, how much of its input the provider read from its cache,
and the turns where earlier messages were dropped or summarised.

Read from the turns' spans, as the session page reads them for its transcript:

- **Context**: a turn's fullest LLM call (the largest share of its model's window;
  without a known window, the most input tokens), its input tokens and its model's
  window (``context_window``). The trace rollup's ``context_use`` is the same share.
- **Cached**: that call's cache reads (OpenAI's ``cached_tokens``, Anthropic's cache
  reads: ``conventions.CACHE_READ_TOKENS``) over its input tokens, where reported.
- **History dropped**: a turn whose chat call (its LLM call with the longest message
  list) does not begin with the previous turn's chat call's messages and reply, when
  either of the two resent history (held an earlier reply): a conversation cut to its
  last messages, or replaced by a summary. An app that never resends history (OpenAI's
  Responses API with ``previous_response_id``) shows no drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from threadline.server.context_window import context_window
from threadline.server.ingest.conventions import CACHE_READ_TOKENS
from threadline.server.ingest.session_signals import message_digests
from threadline.server.model import Span, TraceDetail


@dataclass(frozen=True, slots=True)
class TurnContext:
    turn: int  # 1-based, in the session
    trace_id: str
    model: str | None
    input_tokens: int | None
    context_window: int | None
    cached_tokens: int | None
    history_dropped: bool

    @property
    def use(self) -> float | None:
        """Input tokens as a share of the window (None without both)."""
        if not self.input_tokens or not self.context_window:
            return None
        return self.input_tokens / self.context_window

    @property
    def cached_share(self) -> float | None:
        """Cached input tokens as a share of the input tokens, where reported."""
        if self.cached_tokens is None or not self.input_tokens:
            return None
        return min(self.cached_tokens / self.input_tokens, 1.0)


@dataclass(frozen=True, slots=True)
class _Chat:
    """A turn's chat call: the digest of its messages and reply, of its input without
    the trailing user messages, and whether its input held an earlier reply."""

    conversation: bytes | None
    prefix: bytes | None
    resent_history: bool


def context_growth(
    traces: Sequence[TraceDetail], first_turn: int = 1, previous: TraceDetail | None = None
) -> list[TurnContext]:
    """The turns ``traces`` (in start order, the first being turn ``first_turn``);
    ``previous`` is the turn before them, if any, for the first one's history."""
    turns: list[TurnContext] = []
    before = _chat(previous) if previous is not None else None
    for offset, trace in enumerate(traces):
        chat = _chat(trace)
        dropped = (
            before is not None
            and chat is not None
            and before.conversation is not None
            and (before.resent_history or chat.resent_history)
            and (chat.prefix is None or chat.prefix != before.conversation)
        )
        call = _fullest_call(trace.spans)
        turns.append(
            TurnContext(
                turn=first_turn + offset,
                trace_id=trace.trace_id,
                model=call.model if call else None,
                input_tokens=call.input_tokens if call else None,
                context_window=context_window(call.model) if call and call.model else None,
                cached_tokens=_cached_tokens(call) if call else None,
                history_dropped=bool(dropped),
            )
        )
        before = chat if chat is not None else before
    return turns


def _fullest_call(spans: Sequence[Span]) -> Span | None:
    def fullness(span: Span) -> tuple[bool, float, int]:
        tokens = span.input_tokens or 0
        window = context_window(span.model) if span.model else None
        return (window is not None, tokens / window if window else 0.0, tokens)

    calls = [s for s in spans if s.input_tokens and s.model]
    return max(calls, key=fullness) if calls else None


def _cached_tokens(span: Span) -> int | None:
    for key in CACHE_READ_TOKENS:
        value = span.attributes.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _chat(trace: TraceDetail) -> _Chat | None:
    """The trace's chat call as ``_Chat``: its LLM call with the longest message list."""
    best: tuple[int, Span] | None = None
    for span in trace.spans:
        messages = _messages(span.input)
        if span.span_type == "LLM" and messages and (best is None or len(messages) > best[0]):
            best = (len(messages), span)
    if best is None:
        return None
    messages = _messages(best[1].input) or []
    conversation, prefix = message_digests(messages, _messages(best[1].output), None)
    resent = any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages)
    return _Chat(conversation, prefix, resent)


def _messages(value: Any) -> list[Any] | None:
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        return value
    return None
