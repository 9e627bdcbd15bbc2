"""Token cost from the ``genai-prices`` library, for spans whose client sent no cost.

An unknown model has no cost (None), never a cost of zero: a zero would make an
unpriced session look free.
"""

from __future__ import annotations

from functools import lru_cache

from genai_prices import Usage, calc_price

# Prices are per model, but the library's calculation handles tiers and cache
# discounts and costs ~0.2 ms a call; identical usages repeat a lot in practice
# (same prompt template, same reply size), so the exact answer is memoised.
_CACHE_SIZE = 65_536


def cost_usd(
    model: str | None,
    provider: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
) -> float | None:
    if not model or (input_tokens is None and output_tokens is None):
        return None
    return _cost(
        model,
        provider,
        input_tokens or 0,
        output_tokens or 0,
        cache_read_tokens or 0,
        cache_write_tokens or 0,
    )


@lru_cache(maxsize=_CACHE_SIZE)
def _cost(
    model: str,
    provider: str | None,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
) -> float | None:
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens or None,
        cache_write_tokens=cache_write_tokens or None,
    )
    for provider_id in (provider, None) if provider else (None,):
        try:
            return float(calc_price(usage, model_ref=model, provider_id=provider_id).total_price)
        except (LookupError, ValueError):
            # An unknown provider name (e.g. a framework's own "system" label) should not
            # hide a model the library knows: retry by model name alone.
            continue
    return None
