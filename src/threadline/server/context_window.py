"""How full a model's context window an LLM call filled: its input tokens over the
window genai-prices gives for the model (``context_window`` of its model data).

Input tokens as the span reports them: OpenAI's ``prompt_tokens`` include cached
tokens, and OpenLLMetry's Anthropic instrumentation adds cache reads and writes to the
input tokens, which is also how genai-prices counts them (cache tokens are part of
the input). A model the library does not know, or knows without a window, has no use
(None): an unknown window is not an empty one.
"""

from __future__ import annotations

from functools import lru_cache

from genai_prices import Usage, calc_price


@lru_cache(maxsize=4096)
def context_window(model: str) -> int | None:
    """The model's context window in tokens, or None when genai-prices has none."""
    try:
        window = calc_price(Usage(input_tokens=0, output_tokens=0), model).model.context_window
    except (LookupError, ValueError):
        return None
    return window if isinstance(window, int) and window > 0 else None


def context_use(model: str | None, input_tokens: int | None) -> float | None:
    """``input_tokens`` as a share of ``model``'s window (may pass 1 when a provider
    allows more than the library says); None without both."""
    if not model or not input_tokens:
        return None
    window = context_window(model)
    return None if window is None else input_tokens / window
