"""Token cost from the ``genai-prices`` library, for spans whose client sent no cost.

An unknown model has no cost (None), never a cost of zero: a zero would make an
unpriced session look free.

The library's calculation costs ~0.2 ms a call, too slow for every LLM span at ingest
rates. Most models have flat prices, and a flat price is linear in the token counts,
so for those the library is asked once per model for the price of a million tokens of
each kind and the cost of any usage follows from those rates. Models with tiered or
time-conditional prices keep going through the library's full calculation (memoised).
``tests/server/test_pricing.py`` checks the two agree.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from genai_prices import Usage, calc_price, data_snapshot
from genai_prices.types import ModelPrice, TieredPrices

_MILLION = 1_000_000


class _Rates(NamedTuple):
    """USD per token of each kind, as genai-prices counts them (cache tokens are part
    of the input tokens, so their rates are the difference to the input rate)."""

    input: float
    output: float
    cache_read: float
    cache_write: float


def load() -> None:
    """Load the library's price table now (~70 ms, once a process), at start-up rather
    than in the first export that carries a model."""
    data_snapshot.get_snapshot()


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
    usage = (input_tokens or 0, output_tokens or 0, cache_read_tokens or 0, cache_write_tokens or 0)
    found, rates = _linear_rates(model, provider)
    if not found:
        return None
    if rates is not None:
        return (
            usage[0] * rates.input
            + usage[1] * rates.output
            + usage[2] * rates.cache_read
            + usage[3] * rates.cache_write
        )
    return _exact_cost(model, provider, *usage)


@lru_cache(maxsize=4096)
def _linear_rates(model: str, provider: str | None) -> tuple[bool, _Rates | None]:
    """(is the model known, its linear rates or None when its price is not flat)."""
    try:
        base = _calc(model, provider, _MILLION, 0, 0, 0)
    except LookupError:
        return False, None
    prices = base.model.prices
    if not isinstance(prices, ModelPrice) or any(
        isinstance(value, TieredPrices) for value in vars(prices).values()
    ):
        return True, None
    try:
        per_input = float(base.total_price) / _MILLION
        return True, _Rates(
            input=per_input,
            output=float(_calc(model, provider, 0, _MILLION, 0, 0).total_price) / _MILLION,
            cache_read=float(_calc(model, provider, _MILLION, 0, _MILLION, 0).total_price)
            / _MILLION
            - per_input,
            cache_write=float(_calc(model, provider, _MILLION, 0, 0, _MILLION).total_price)
            / _MILLION
            - per_input,
        )
    except (LookupError, ValueError):
        return True, None


@lru_cache(maxsize=65_536)
def _exact_cost(
    model: str,
    provider: str | None,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
) -> float | None:
    try:
        return float(
            _calc(
                model, provider, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens
            ).total_price
        )
    except (LookupError, ValueError):
        return None


def _calc(
    model: str,
    provider: str | None,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
):  # -> PriceCalculation
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens or None,
        cache_write_tokens=cache_write_tokens or None,
    )
    if provider:
        try:
            return calc_price(usage, model_ref=model, provider_id=provider)
        except LookupError:
            # An unknown provider name (e.g. a framework's own "system" label) should
            # not hide a model the library knows by name alone.
            pass
    return calc_price(usage, model_ref=model)
