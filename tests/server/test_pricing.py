"""The fast linear pricing agrees with genai-prices' own calculation."""

from __future__ import annotations

import random

import pytest
from genai_prices import Usage, calc_price

from threadline.server.pricing import cost_usd

MODELS = [
    ("gpt-4o-mini", "openai"),
    ("gpt-4o", None),
    ("claude-3-5-haiku-latest", "anthropic"),
    ("claude-sonnet-4-5", "anthropic"),
    ("gemini-1.5-pro", "google-gla"),
    ("gpt-4o-mini", "not-a-provider"),
]


@pytest.mark.parametrize(("model", "provider"), MODELS)
def test_matches_the_library(model, provider):
    rng = random.Random(model)
    for _ in range(50):
        input_tokens = rng.randint(0, 300_000)
        output_tokens = rng.randint(0, 20_000)
        cache_read = rng.choice([0, rng.randint(0, input_tokens)])
        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read or None,
        )
        try:
            expected = float(calc_price(usage, model_ref=model, provider_id=provider).total_price)
        except LookupError:
            expected = float(calc_price(usage, model_ref=model).total_price)
        got = cost_usd(model, provider, input_tokens, output_tokens, cache_read)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_unknown_model_and_missing_usage_have_no_cost():
    assert cost_usd("no-such-model-anywhere", None, 10, 10) is None
    assert cost_usd(None, None, 10, 10) is None
    assert cost_usd("gpt-4o", None, None, None) is None
